package merch

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/podium-rank/podium/engine/plugin"
	"github.com/podium-rank/podium/sdk/sdktest"
)

// guest is the Go build of this plugin.
const guest = "plugins/rules/merch/go"

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

// recode rewrites a golden case's attribute codes and ids into the codes the sdktest
// Runtime's resolver (which answers the guest's podium.lookup) gives the same strings. The
// outputs do not depend on the codes, only on which candidates share them.
func recode(t *testing.T, c *GoldenCase, attributes []string) (ids []uint32, attrs []int32) {
	_, dict := sdktest.Runtime(t)
	back := map[string]map[int32]string{}
	for space, table := range c.Lookup {
		back[space] = map[int32]string{}
		for value, code := range table {
			back[space][code] = value
		}
	}
	n := len(c.Scores)
	for _, id := range c.IDs {
		v, ok := back["id"][int32(id)]
		if !ok {
			v = "unnamed-" + strconv.Itoa(int(id))
		}
		ids = append(ids, uint32(dict.Code("id", v)))
	}
	attrs = slices.Clone(c.Attributes)
	for a, name := range attributes {
		for i := range n {
			code := attrs[a*n+i]
			if code < 0 {
				continue
			}
			v, ok := back[name][code]
			if !ok {
				t.Fatalf("%s: %s code %d has no string", c.Name, name, code)
			}
			attrs[a*n+i] = dict.Code(name, v)
		}
	}
	return ids, attrs
}

// TestWasmGolden runs the golden cases through the built .wasm, whose pins and brands
// resolve through podium.lookup, and expects exactly the native outputs.
func TestWasmGolden(t *testing.T) {
	wasm := sdktest.Build(t, guest, "")
	for _, c := range readGolden(t) {
		t.Run(c.Name, func(t *testing.T) {
			p := sdktest.Start(t, wasm, c.Params)
			ids, attrs := recode(t, &c, p.Attributes())
			in := &plugin.Input{K: 10, IDs: ids, Scores: c.Scores, Features: c.Features, Attrs: attrs}
			var out plugin.Output
			if err := p.Call(context.Background(), in, &out); err != nil {
				t.Fatal(err)
			}
			for i := range c.Keep {
				if out.Keep[i] != (c.Keep[i] == 1) || out.Pin[i] != c.Pin[i] || out.Scores[i] != c.OutScores[i] {
					t.Fatalf("candidate %d: wasm keep %v pin %d score %v, native keep %d pin %d score %v",
						i, out.Keep[i], out.Pin[i], out.Scores[i], c.Keep[i], c.Pin[i], c.OutScores[i])
				}
			}
		})
	}
}

// TestWasmInitError checks that bad params fail the plugin's start.
func TestWasmInitError(t *testing.T) {
	wasm := sdktest.Build(t, guest, "")
	if _, err := sdktest.Load(t, wasm).Start(context.Background(), plugin.PluginConfig{Params: json.RawMessage(`{"cap":{"attribute":"brand","max":0}}`)}); err == nil {
		t.Fatal("started with cap max 0")
	}
}

// BenchmarkStage compares one stage call over 1000 candidates × 32 features, rule by rule
// and with every rule: the native package against the .wasm through the engine's host.
func BenchmarkStage(b *testing.B) {
	const n = 1000
	in, cols := benchInput(n)
	_, dict := sdktest.Runtime(b)
	lookup := func(space, value string) int32 { return dict.Code(space, value) }
	wasm := sdktest.Build(b, guest, "")
	for _, tc := range []struct{ name, params string }{
		{"none", `{"cap":null,` + cols + `}`},
		{"drop", `{"cap":null,"drop_if":{"feature":"stock","le":0},` + cols + `}`},
		{"boost", `{"cap":null,"boost":[{"attribute":"brand","values":["b7","b9"],"add":0.5}],"bury":[{"feature":"f1","gt":15,"mul":0.5}],` + cols + `}`},
		{"pin", `{"cap":null,"pin":{"i1":0,"i2":3,"i3":5},` + cols + `}`},
		{"cap", `{"cap":{"attribute":"brand","max":3},` + cols + `}`},
		{"all", `{"drop_if":{"feature":"stock","le":0},"boost":[{"attribute":"brand","values":["b7","b9"],"add":0.5}],` +
			`"bury":[{"feature":"f1","gt":15,"mul":0.5}],"pin":{"i1":0,"i2":3},"cap":{"attribute":"brand","max":3},` + cols + `}`},
	} {
		params := []byte(tc.params)
		r, err := New(effective(b, params), lookup)
		if err != nil {
			b.Fatal(err)
		}
		want := Output{Keep: make([]uint8, n), Scores: make([]float32, n), Pin: make([]int32, n)}
		b.Run(tc.name+"/native", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = r.Apply(in, want)
			}
		})
		p := sdktest.Start(b, wasm, params)
		win := &plugin.Input{K: 20, IDs: in.IDs, Scores: in.Scores, Features: in.Features, Attrs: in.Attributes}
		var out plugin.Output
		b.Run(tc.name+"/wasm", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Call(context.Background(), win, &out); err != nil {
					b.Fatal(err)
				}
			}
		})
		for i := range len(out.Keep) { // empty when -bench skipped the wasm run
			if out.Keep[i] != (want.Keep[i] == 1) || out.Pin[i] != want.Pin[i] || out.Scores[i] != want.Scores[i] {
				b.Fatalf("%s: candidate %d differs", tc.name, i)
			}
		}
	}
}
