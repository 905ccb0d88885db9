package linear_test

import (
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/podium-rank/podium/sdk/sdktest"
)

// guests are the builds of this plugin; every one must pass the same goldens.
var guests = []struct{ lang, src string }{
	{"go", "plugins/rank/linear/go"},
	{"c", "plugins/rank/linear/c"},
}

func fixtures(t *testing.T) []string {
	all, err := filepath.Glob("testdata/*.json")
	if err != nil {
		t.Fatal(err)
	}
	var fx []string
	for _, f := range all {
		if !strings.HasSuffix(f, ".golden.json") {
			fx = append(fx, f)
		}
	}
	if len(fx) == 0 {
		t.Fatal("no fixtures")
	}
	return fx
}

func TestGolden(t *testing.T) {
	for _, g := range guests {
		wasm := sdktest.Build(t, g.src, "")
		for _, fx := range fixtures(t) {
			t.Run(g.lang+"/"+filepath.Base(fx), func(t *testing.T) {
				sdktest.Golden(t, wasm, fx)
			})
		}
	}
}

// linearParams mirrors the plugin's params.
type linearParams struct {
	Features    []string           `json:"features"`
	Weights     map[string]float64 `json:"weights"`
	Bias        float64            `json:"bias"`
	InputWeight float64            `json:"input_weight"`
	Missing     float64            `json:"missing"`
	Link        string             `json:"link"`
}

// TestGoldensMatchNativeGo checks the goldens themselves against the same model written in
// plain Go, so that a wrong golden cannot pass.
func TestGoldensMatchNativeGo(t *testing.T) {
	defaults := linearParams{Features: []string{"retrieval_score", "popularity"},
		Weights: map[string]float64{"retrieval_score": 1, "popularity": 0.1}, Link: "identity"}
	for _, fx := range fixtures(t) {
		f, err := sdktest.ReadFixture(fx)
		if err != nil {
			t.Fatal(err)
		}
		p := defaults
		if len(f.Params) > 0 {
			if err := json.Unmarshal(f.Params, &p); err != nil {
				t.Fatal(err)
			}
		}
		var want sdktest.Result
		if err := readJSON(strings.TrimSuffix(fx, ".json")+".golden.json", &want); err != nil {
			t.Fatal(err)
		}
		if len(want.Scores) != len(f.Candidates) {
			t.Fatalf("%s: golden has %d scores for %d candidates", fx, len(want.Scores), len(f.Candidates))
		}
		for i, c := range f.Candidates {
			s := p.Bias + p.InputWeight*float64(c.Score)
			for _, name := range p.Features {
				x := p.Missing
				if v := c.Features[name]; v != nil {
					x = *v
				}
				s += p.Weights[name] * x
			}
			if p.Link == "logistic" {
				s = 1 / (1 + math.Exp(-s))
			}
			if math.Abs(s-float64(want.Scores[i])) > 1e-5 {
				t.Errorf("%s: candidate %s: golden %v, native %v", fx, c.ID, want.Scores[i], s)
			}
		}
	}
}
