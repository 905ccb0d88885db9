package mmr

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/podium-rank/podium/engine/plugin"
	"github.com/podium-rank/podium/sdk/sdktest"
)

// guests are the builds of this plugin; every one must give the native order exactly. The
// C guest computes its dot products in wasm SIMD; built with -DMMR_HOST_DOT it calls the
// host's podium.dot like the Go guest (see c/mmr.c).
var guests = []struct{ lang, src, cflags string }{
	{"go", "plugins/diversity/mmr/go", ""},
	{"c", "plugins/diversity/mmr/c", ""},
	{"c-hostdot", "plugins/diversity/mmr/c", "-DMMR_HOST_DOT"},
}

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

// TestWasmGolden runs the golden cases through every build (similarities by the host's dot
// kernel or the C guest's SIMD loop) and expects exactly the native order.
func TestWasmGolden(t *testing.T) {
	for _, g := range guests {
		wasm := sdktest.Build(t, g.src, g.cflags)
		for _, c := range readGolden(t) {
			t.Run(g.lang+"/"+c.Name, func(t *testing.T) {
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
}

// TestWasmParams checks that every build accepts and refuses the same params as the native
// package: strict decoding (unknown keys, types, integers, float32 range, null), the checks
// of NewFromParams, and what encoding/json tolerates (field names in any case, null).
func TestWasmParams(t *testing.T) {
	for _, params := range []string{
		`{}`,
		`{"lambda":null,"pool":null,"mode":null}`,
		`{"lambda":0,"pool":0,"max_per_value":0}`,
		`{"lambda":1,"pool":5000000000}`,
		`{"LAMBDA":0.5,"Mode":"round_robin"}`,
		`{"mode":"round_robin","attribute":"brand","max_per_value":2}`,
		`{"mode":"mmr","attribute":"br\u0061nd"}`,
		`{"lambda":2}`,
		`{"lambda":-0.1}`,
		`{"lambda":"0.5"}`,
		`{"lambda":1e39}`,
		`{"pool":-1}`,
		`{"pool":1.5}`,
		`{"pool":1e2}`,
		`{"max_per_value":-1}`,
		`{"max_per_value":2,"attribute":null}`,
		`{"attribute":"nope"}`,
		`{"mode":"random"}`,
		`{"mode":"round_robin","attribute":""}`,
		`{"mode":5}`,
		`{"typo":1}`,
	} {
		_, nativeErr := New(effective(t, []byte(params)), NativeKernels)
		for _, g := range guests {
			_, err := sdktest.Load(t, sdktest.Build(t, g.src, g.cflags)).Start(context.Background(),
				plugin.PluginConfig{Params: json.RawMessage(params)})
			if (err != nil) != (nativeErr != nil) {
				t.Errorf("%s guest, params %s: start error %v, native error %v", g.lang, params, err, nativeErr)
			}
		}
	}
}

// TestWasmMatchesNativeRandom runs random params (both modes, λ, pools, caps) over random
// requests (ties, NaN and infinite scores, zero and non-finite embeddings, dimensions that
// are not multiples of 4, k beyond n) through every build and expects the native order.
func TestWasmMatchesNativeRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for trial := range 60 {
		n, dim := rng.IntN(300), []int{1, 3, 4, 8, 13, 64}[rng.IntN(6)]
		if trial%3 == 1 {
			dim = []int{13, 64}[rng.IntN(2)]
		}
		in := randomInput(rng, n, dim)
		brands := make([]int32, n)
		for i := range brands {
			brands[i] = int32(rng.IntN(40))
			if rng.IntN(10) == 0 {
				brands[i] = -1
			}
		}
		in.Attributes = append(in.Attributes, brands...) // category, brand
		for i := range n {
			switch rng.IntN(40) {
			case 0:
				in.Scores[i] = float32(math.NaN())
			case 1:
				in.Scores[i] = float32(math.Inf(1 - 2*rng.IntN(2)))
			case 2:
				if dim > 0 {
					in.Embeddings[i*dim] = float32(math.Inf(1))
				}
			}
		}
		if trial%3 == 1 {
			// Rows that permute one vector, with equal scores: their similarities differ only
			// by the rounding of the sums, so any other summation order picks differently.
			base := make([]float32, dim)
			for j := range base {
				base[j] = float32(rng.NormFloat64())
			}
			for i := range n {
				for j, pj := range rng.Perm(dim) {
					in.Embeddings[i*dim+j] = base[pj]
				}
				in.Scores[i] = 1
			}
		}
		params := fmt.Sprintf(`{"lambda":%g,"pool":%d,"attribute":%q,"max_per_value":%d}`,
			float32(rng.IntN(11))/10, []int{0, 0, 5, 40, 1000}[rng.IntN(5)], []string{"category", "brand"}[rng.IntN(2)], rng.IntN(4))
		if trial%4 == 3 {
			params = fmt.Sprintf(`{"mode":"round_robin","attribute":%q,"max_per_value":%d}`,
				[]string{"category", "brand"}[rng.IntN(2)], rng.IntN(4))
		}
		k := rng.IntN(40)
		d, err := New(effective(t, []byte(params)), NativeKernels)
		if err != nil {
			t.Fatalf("%s: %v", params, err)
		}
		want := make([]int32, n+1)
		m, err := d.Order(in, k, want)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range guests {
			p := sdktest.Start(t, sdktest.Build(t, g.src, g.cflags), json.RawMessage(params))
			var out plugin.Output
			if err := p.Call(context.Background(), wasmInput(k, in.Embeddings, in.Attributes, in.Scores), &out); err != nil {
				t.Fatalf("%s guest, %s: %v", g.lang, params, err)
			}
			if !slices.Equal(out.Order, want[:m]) {
				t.Fatalf("%s guest, %s, n %d dim %d k %d:\nwasm   %v\nnative %v", g.lang, params, n, dim, k, out.Order, want[:m])
			}
		}
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
	for _, g := range guests {
		p := sdktest.Start(b, sdktest.Build(b, g.src, g.cflags), params)
		win := wasmInput(k, in.Embeddings, in.Attributes, in.Scores)
		var out plugin.Output
		b.Run("wasm-"+g.lang, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Call(context.Background(), win, &out); err != nil {
					b.Fatal(err)
				}
			}
		})
		if out.Order != nil && !slices.Equal(out.Order, want[:m]) { // nil when -bench skipped the wasm run
			b.Fatalf("%s guest: wasm %v, native %v", g.lang, out.Order, want[:m])
		}
	}
}
