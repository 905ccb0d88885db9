package gbdt

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/podium-rank/podium/engine/plugin"
	"github.com/podium-rank/podium/sdk/sdktest"
)

// guest is the Go build of this plugin.
const guest = "plugins/rank/gbdt/go"

// TestWasmMatchesNative runs every xgboost fixture through the built .wasm, in both output
// modes, and expects exactly the native scores (which TestXGBoostFixtures holds to
// xgboost's within 1e-5).
func TestWasmMatchesNative(t *testing.T) {
	wasm := sdktest.Build(t, guest, "")
	for _, name := range fixtureNames {
		f, model := loadFixture(t, name)
		for _, output := range []string{"transformed", "margin"} {
			t.Run(name+"/"+output, func(t *testing.T) {
				params, _ := json.Marshal(map[string]any{"model": json.RawMessage(model), "features": f.Features, "output": output})
				r, err := New(effective(t, params))
				if err != nil {
					t.Fatal(err)
				}
				n := len(f.Rows)
				feat := columnMajor(f, f.Features)
				want := make([]float32, n)
				if err := r.Rank(feat, want); err != nil {
					t.Fatal(err)
				}
				p := sdktest.Start(t, wasm, params)
				in := &plugin.Input{K: 10, Features: feat}
				for i := range n {
					in.IDs = append(in.IDs, uint32(i))
				}
				var out plugin.Output
				if err := p.Call(context.Background(), in, &out); err != nil {
					t.Fatal(err)
				}
				for i := range want {
					if out.Scores[i] != want[i] {
						t.Fatalf("row %d: wasm %v, native %v", i, out.Scores[i], want[i])
					}
				}
			})
		}
	}
}

// TestWasmInitError checks that a bad model fails the plugin's start.
func TestWasmInitError(t *testing.T) {
	wasm := sdktest.Build(t, guest, "")
	for _, params := range []string{`{}`, `{"model":{"learner":{}}}`, `{"model":` + stump("multi:softmax", "0") + `}`} {
		if _, err := sdktest.Load(t, wasm).Start(context.Background(), plugin.PluginConfig{Params: json.RawMessage(params)}); err == nil {
			t.Errorf("%.40s: started", params)
		}
	}
}

// BenchmarkStage compares one stage call over 1000 candidates × 32 features (10% missing)
// with the logistic fixture model: the native package against the .wasm through the
// engine's host (copy in, call, copy out).
func BenchmarkStage(b *testing.B) {
	const n = 1000
	_, model := loadFixture(b, "logistic")
	params, _ := json.Marshal(map[string]any{"model": json.RawMessage(model), "features": demoColumns})
	r, err := New(params)
	if err != nil {
		b.Fatal(err)
	}
	feat := benchInput(n, 0.1)
	want := make([]float32, n)
	b.Run("native", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = r.Rank(feat, want)
		}
	})
	p := sdktest.Start(b, sdktest.Build(b, guest, ""), params)
	in := &plugin.Input{K: 20, Features: feat}
	for i := range n {
		in.IDs = append(in.IDs, uint32(i))
	}
	var out plugin.Output
	b.Run("wasm", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := p.Call(context.Background(), in, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
	for i := range len(out.Scores) { // empty when -bench skipped the wasm run
		if out.Scores[i] != want[i] {
			b.Fatalf("candidate %d: wasm %v, native %v", i, out.Scores[i], want[i])
		}
	}
}
