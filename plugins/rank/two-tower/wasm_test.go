package twotower

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/podium-rank/podium/engine/plugin"
	"github.com/podium-rank/podium/sdk/sdktest"
)

// guest is the Go build of this plugin.
const guest = "plugins/rank/two-tower/go"

func readGolden(t testing.TB) []GoldenCase {
	b, err := os.ReadFile(filepath.Join("testdata", "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []GoldenCase
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	return cases
}

func wasmInput(c *GoldenCase) *plugin.Input {
	in := &plugin.Input{K: c.N, Scores: c.Scores, Features: c.Features, ItemEmb: c.Embeddings, QueryEmb: c.Query}
	for i := range c.N {
		in.IDs = append(in.IDs, uint32(i))
	}
	return in
}

// TestWasmGolden runs the golden cases through the built .wasm (with the host's kernels)
// and expects exactly the native scores: the pipelines must agree bit for bit.
func TestWasmGolden(t *testing.T) {
	wasm := sdktest.Build(t, guest, "")
	for _, c := range readGolden(t) {
		t.Run(c.Name, func(t *testing.T) {
			p := sdktest.Start(t, wasm, c.Params)
			var out plugin.Output
			if err := p.Call(context.Background(), wasmInput(&c), &out); err != nil {
				t.Fatal(err)
			}
			for i := range c.Want {
				if out.Scores[i] != c.Want[i] {
					t.Fatalf("candidate %d: wasm %v, native %v", i, out.Scores[i], c.Want[i])
				}
			}
		})
	}
}

// TestWasmInitError checks that bad params fail the plugin's start with the package's
// message.
func TestWasmInitError(t *testing.T) {
	wasm := sdktest.Build(t, guest, "")
	_, err := sdktest.Load(t, wasm).Start(context.Background(), plugin.PluginConfig{Params: json.RawMessage(`{"similarity":"l2"}`)})
	if err == nil {
		t.Fatal("started with similarity l2")
	}
}

// BenchmarkStage compares one stage call over 1000 candidates × 64-d × 32 features: the
// native package against the .wasm through the engine's host (copy in, call, copy out).
func BenchmarkStage(b *testing.B) {
	const n, dim = 1000, 64
	in, cols := benchInput(n, dim)
	params, _ := json.Marshal(map[string]any{"similarity": "dot", "bias_feature": "popularity", "bias_weight": 0.1,
		"bias_transform": "none", "features": cols})
	r, err := New(params, NativeKernels)
	if err != nil {
		b.Fatal(err)
	}
	want := make([]float32, n)
	b.Run("native", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = r.Rank(in, want)
		}
	})
	p := sdktest.Start(b, sdktest.Build(b, guest, ""), params)
	win := &plugin.Input{K: 20, Scores: in.Scores, Features: in.Features, ItemEmb: in.Embeddings, QueryEmb: in.Query}
	for i := range n {
		win.IDs = append(win.IDs, uint32(i))
	}
	var out plugin.Output
	b.Run("wasm", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := p.Call(context.Background(), win, &out); err != nil {
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
