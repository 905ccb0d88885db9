package mmr

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/podium-rank/podium/engine/plugin"
	"github.com/podium-rank/podium/sdk/sdktest"
)

// guest is the Go build of this plugin.
const guest = "plugins/diversity/mmr/go"

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

func wasmInput(k int, emb []float32, attrs []int32, scores []float32) *plugin.Input {
	in := &plugin.Input{K: k, Scores: scores, ItemEmb: emb, Attrs: attrs}
	for i := range scores {
		in.IDs = append(in.IDs, uint32(i))
	}
	return in
}

// TestWasmGolden runs the golden cases through the built .wasm (similarities by the host's
// dot kernel) and expects exactly the native order.
func TestWasmGolden(t *testing.T) {
	wasm := sdktest.Build(t, guest, "")
	for _, c := range readGolden(t) {
		t.Run(c.Name, func(t *testing.T) {
			p := sdktest.Start(t, wasm, c.Params)
			var out plugin.Output
			if err := p.Call(context.Background(), wasmInput(c.K, c.Embeddings, c.Attributes, c.Scores), &out); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(out.Order, c.Want) {
				t.Fatalf("wasm %v\nnative %v", out.Order, c.Want)
			}
		})
	}
}

// TestWasmInitError checks that bad params fail the plugin's start.
func TestWasmInitError(t *testing.T) {
	wasm := sdktest.Build(t, guest, "")
	if _, err := sdktest.Load(t, wasm).Start(context.Background(), plugin.PluginConfig{Params: json.RawMessage(`{"lambda":2}`)}); err == nil {
		t.Fatal("started with lambda 2")
	}
}

// BenchmarkStage compares one stage call choosing 20 of 1000 candidates × 64-d with the
// manifest's default params (mmr, λ 0.7, category cap 3, pool 100): the native package
// against the .wasm through the engine's host.
func BenchmarkStage(b *testing.B) {
	const n, dim, k = 1000, 64, 20
	in := randomInput(rand.New(rand.NewPCG(1, 2)), n, dim)
	in.Attributes = append(slices.Clone(in.Attributes), in.Attributes...) // category, brand
	params := effective(b, []byte(`{}`))
	d, err := New(params, NativeKernels)
	if err != nil {
		b.Fatal(err)
	}
	want := make([]int32, n)
	m, err := d.Order(in, k, want)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("native", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = d.Order(in, k, want)
		}
	})
	p := sdktest.Start(b, sdktest.Build(b, guest, ""), params)
	win := wasmInput(k, in.Embeddings, in.Attributes, in.Scores)
	var out plugin.Output
	b.Run("wasm", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := p.Call(context.Background(), win, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
	if out.Order != nil && !slices.Equal(out.Order, want[:m]) { // nil when -bench skipped the wasm run
		b.Fatalf("wasm %v, native %v", out.Order, want[:m])
	}
}
