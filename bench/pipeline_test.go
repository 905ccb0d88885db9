package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/podium-rank/podium/engine"
	"github.com/podium-rank/podium/engine/demo"
	"github.com/podium-rank/podium/engine/pipeline"
	"github.com/podium-rank/podium/engine/retrieval"
	"github.com/podium-rank/podium/engine/stages"
	"github.com/podium-rank/podium/plugins/native"
)

// The three-stage pipeline compared Wasm against native: a linear rank over all 32 demo
// features plus the retrieval score, merchandising rules (brand cap), and MMR diversity.
var (
	linearParams = func() json.RawMessage {
		feats := append([]string{"retrieval_score"}, demo.ItemFeatureNames...)
		w := map[string]float32{"retrieval_score": 1}
		for i, f := range demo.ItemFeatureNames {
			w[f] = 0.01 * float32(i%5)
		}
		b, _ := json.Marshal(map[string]any{"features": feats, "weights": w})
		return b
	}()
	merchParams = json.RawMessage(`{"cap":{"attribute":"brand","max":2,"mode":"push"}}`)
	mmrParams   = json.RawMessage(`{"mode":"mmr","lambda":0.7,"attribute":"category","max_per_value":3}`)
)

type stageSpec struct {
	name, kind, dir string
	params          json.RawMessage
}

var threeStages = []stageSpec{
	{"rank", "rank", "plugins/rank/linear", linearParams},
	{"rules", "rules", "plugins/rules/merch", merchParams},
	{"diversity", "diversity", "plugins/diversity/mmr", mmrParams},
}

func repoRoot() string { r, _ := filepath.Abs(".."); return r }

var (
	buildMu sync.Mutex
	builtAt = map[string]string{}
)

// buildGuest builds plugin guest dir/lang ("go" or "c") with the repo's script, once per
// test binary, and returns the .wasm path.
func buildGuest(tb testing.TB, dir, lang string) string {
	tb.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	src := filepath.Join(dir, lang)
	if p, ok := builtAt[src]; ok {
		return p
	}
	out := filepath.Join(os.TempDir(), fmt.Sprintf("podium-bench-%d-%s.wasm", os.Getpid(), filepath.Base(dir)+"-"+lang))
	cmd := exec.Command(filepath.Join(repoRoot(), "scripts", "build-wasm.sh"), src, out)
	cmd.Dir = repoRoot()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("build %s: %v\n%s", src, err, stderr.Bytes())
	}
	builtAt[src] = out
	return out
}

// wasmPipeline builds the three stages from Wasm: the rank guest in rankLang ("go" or "c"),
// the rules and diversity guests in otherLang.
func wasmPipeline(tb testing.TB, e *engine.Engine, rankLang, otherLang string) *pipeline.Pipeline {
	tb.Helper()
	cfg := &pipeline.Config{}
	for _, s := range threeStages {
		lang := otherLang
		if s.name == "rank" {
			lang = rankLang
		}
		cfg.Stages = append(cfg.Stages, pipeline.StageConfig{Name: s.name, Kind: s.kind,
			Plugin: buildGuest(tb, filepath.Join(repoRoot(), s.dir), lang), Params: s.params, Deadline: "1s"})
	}
	if err := cfg.Check(); err != nil {
		tb.Fatal(err)
	}
	p, err := e.BuildPipeline(cfg, repoRoot())
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// nativePipeline builds the same three stages from the native twins.
func nativePipeline(tb testing.TB, e *engine.Engine) *pipeline.Pipeline {
	tb.Helper()
	lookup := engine.Lookup(e)
	p := &pipeline.Pipeline{}
	for _, s := range threeStages {
		tw, err := native.Load(filepath.Join(repoRoot(), s.dir), s.params, lookup)
		if err != nil {
			tb.Fatal(err)
		}
		st, err := stages.NewPluginStage(s.name, tw, e.Sources())
		if err != nil {
			tb.Fatal(err)
		}
		p.Steps = append(p.Steps, pipeline.Step{Stage: st})
	}
	return p
}

var (
	pipeOnce sync.Once
	pipeEng  *engine.Engine
)

// pipelineEngine is a 20k-item demo catalog retrieving 1000 candidates (950 nearest + 50
// popular) per request. It searches exactly (a flat index): the comparison is about the
// stages, and a flat index costs no build time under the race detector.
func pipelineEngine(tb testing.TB) *engine.Engine {
	pipeOnce.Do(func() {
		cfg := demo.DefaultConfig()
		cfg.Items = envInt("PODIUM_BENCH_PIPELINE_ITEMS", 20000)
		e, err := engine.New(engine.Config{Dim: cfg.Dim, Index: "flat", Retrieval: retrieval.Config{ANN: 950, Popular: 50}})
		if err != nil {
			tb.Fatal(err)
		}
		if err := e.LoadDemo(cfg); err != nil {
			tb.Fatal(err)
		}
		e.SetReady()
		pipeEng = e
	})
	return pipeEng
}

func topIDs(tb testing.TB, e *engine.Engine, user string) ([]uint32, pipeline.Result) {
	tb.Helper()
	r, err := e.Rank(&engine.RankRequest{UserID: user, K: 20})
	if err != nil {
		tb.Fatal(err)
	}
	defer e.Release(r)
	res := pipeline.Result{Stages: append([]pipeline.StageReport(nil), r.Result.Stages...), FellBack: r.Result.FellBack}
	if r.Retrieved != 1000 {
		tb.Fatalf("retrieved %d candidates, want 1000", r.Retrieved)
	}
	return append([]uint32(nil), r.List.IDs...), res
}

// TestWasmPipelineMatchesNative: rank -> rules -> diversity over 1000 candidates × 32
// features gives the same top-20 as Wasm (Go guests; the C rank guest with Go rules and
// diversity; C guests for all three stages) and as native Go.
func TestWasmPipelineMatchesNative(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Wasm guests and a 20k-item catalog")
	}
	e := pipelineEngine(t)
	pipes := map[string]*pipeline.Pipeline{
		"native": nativePipeline(t, e), "wasm-go": wasmPipeline(t, e, "go", "go"),
		"wasm-c-rank": wasmPipeline(t, e, "c", "go"), "wasm-c": wasmPipeline(t, e, "c", "c"),
	}
	for u := 0; u < 30; u++ {
		user := fmt.Sprintf("u%d", u*37)
		var want []uint32
		for _, name := range []string{"native", "wasm-go", "wasm-c-rank", "wasm-c"} {
			e.SetPipeline(pipes[name])
			got, res := topIDs(t, e, user)
			if res.FellBack || len(got) != 20 {
				t.Fatalf("%s %s: fell back or short: %+v, %d items", name, user, res.Stages, len(got))
			}
			if want == nil {
				want = got
				continue
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("%s differs from native for %s at %d:\n%v\n%v", name, user, i, got, want)
				}
			}
		}
	}
}

// BenchmarkPipeline ranks with the native and the Wasm pipelines in one run, so their
// ratio is the cost of pluggability; stage times are reported per stage as µs/op metrics.
func BenchmarkPipeline(b *testing.B) {
	e := pipelineEngine(b)
	for _, c := range []struct {
		name string
		p    func() *pipeline.Pipeline
	}{
		{"native", func() *pipeline.Pipeline { return nativePipeline(b, e) }},
		{"wasm-go", func() *pipeline.Pipeline { return wasmPipeline(b, e, "go", "go") }},
		{"wasm-c-rank", func() *pipeline.Pipeline { return wasmPipeline(b, e, "c", "go") }},
		{"wasm-c", func() *pipeline.Pipeline { return wasmPipeline(b, e, "c", "c") }},
	} {
		e.SetPipeline(c.p())
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			stageUS := make([]int64, 3)
			for i := 0; i < b.N; i++ {
				r, err := e.Rank(&engine.RankRequest{UserID: fmt.Sprintf("u%d", i%10000), K: 20})
				if err != nil {
					b.Fatal(err)
				}
				for j, s := range r.Result.Stages {
					stageUS[j] += s.TookUS
				}
				e.Release(r)
			}
			for j, s := range threeStages {
				b.ReportMetric(float64(stageUS[j])/float64(b.N), s.name+"-µs/op")
			}
		})
	}
}
