package merch

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/podium-rank/podium/engine/plugin"
	"github.com/podium-rank/podium/sdk/sdktest"
)

// guests are the builds of this plugin; every one must pass the same goldens and give the
// native outputs exactly.
var guests = []struct{ lang, src string }{
	{"go", "plugins/rules/merch/go"},
	{"c", "plugins/rules/merch/c"},
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
	for _, g := range guests {
		wasm := sdktest.Build(t, g.src, "")
		for _, c := range readGolden(t) {
			t.Run(g.lang+"/"+c.Name, func(t *testing.T) {
				p := sdktest.Start(t, wasm, c.Params)
				ids, attrs := recode(t, &c, p.Attributes())
				in := &plugin.Input{K: 10, IDs: ids, Scores: c.Scores, Features: c.Features, Attrs: attrs}
				var out plugin.Output
				if err := p.Call(context.Background(), in, &out); err != nil {
					t.Fatal(err)
				}
				if len(out.Keep) != len(c.Keep) {
					t.Fatalf("%d outputs for %d candidates", len(out.Keep), len(c.Keep))
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
}

// TestWasmParams checks that every guest accepts and refuses the same params as the native
// package (which the Go guest is compiled from): strict decoding (unknown keys, types,
// integers, float32 range, null), the compile checks, and what encoding/json tolerates
// (field names in any case, escapes, null).
func TestWasmParams(t *testing.T) {
	_, dict := sdktest.Runtime(t)
	lookup := func(space, value string) int32 { return dict.Code(space, value) }
	for _, params := range []string{
		`{}`,
		`{"cap":null}`,
		`{"cap":{"attribute":"brand","max":2,"mode":null}}`,
		`{"cap":{"attribute":"category","max":5000000000,"mode":"drop"}}`,
		`{"CAP":{"Attribute":"brand","MAX":2}}`,
		`{"drop_if":[{"feature":"stock","le":0},{"attribute":"brand","values":["b1",null],"missing":true}],"features":["stock"]}`,
		`{"drop_if":{"feature":"stock","missing":true},"features":["stock"]}`,
		`{"drop_if":{"feature":"stock","eq":1e-50},"features":["stock"]}`,
		`{"drop_if":[null]}`,
		`{"drop_if":{"feature":"stock","lt":1,"lt":null},"features":["stock"]}`,
		`{"boost":[{"attribute":"brand","value":"b\u0026x","add":1,"mul":null}]}`,
		`{"boost":[{"attribute":"brand","value":"","values":[]}]}`,
		`{"pin":{"i1":null,"i2":5000000000,"":3}}`,
		`{"pin":{"i1":-1,"i1":2}}`,
		`{"drop_if":null,"boost":null,"bury":null,"pin":null}`,
		`{"bury":[{"feature":"stock","gt":1,"lt":5,"ne":3,"mul":0.5,"add":-0.1}],"features":["stock"]}`,
		`{"cap":{"attribute":"brand","max":0}}`,
		`{"cap":{"attribute":"nope","max":2}}`,
		`{"cap":{"attribute":"brand","max":2,"mode":"shove"}}`,
		`{"cap":{"attribute":"brand","max":2.5}}`,
		`{"cap":{"attribute":"brand","max":1e3}}`,
		`{"cap":{"attribute":"brand","max":2,"typo":1}}`,
		`{"cap":[]}`,
		`{"drop_if":{"feature":"stock"},"features":["stock"]}`,
		`{"drop_if":{"feature":"nope","lt":1}}`,
		`{"drop_if":{"feature":"stock","lt":1,"attribute":"brand"},"features":["stock"]}`,
		`{"drop_if":{"feature":"stock","lt":1,"value":"x"},"features":["stock"]}`,
		`{"drop_if":{"feature":"stock","lt":1e39},"features":["stock"]}`,
		`{"drop_if":{"feature":"stock","lt":"1"},"features":["stock"]}`,
		`{"drop_if":{"attribute":"brand","lt":1}}`,
		`{"drop_if":{"attribute":"brand"}}`,
		`{"drop_if":{"attribute":"brand","values":"b1"}}`,
		`{"drop_if":{"attribute":"brand","value":"b1","missing":"yes"}}`,
		`{"drop_if":{"attribute":"brand","value":"b1","add":1}}`,
		`{"drop_if":"stock"}`,
		`{"boost":[{"attribute":"brand","value":"b1","add":-1}]}`,
		`{"boost":[{"attribute":"brand","value":"b1","mul":0.5}]}`,
		`{"boost":[{"attribute":"brand","value":"b1","add":1,"typo":1}]}`,
		`{"boost":{"attribute":"brand","value":"b1","add":1}}`,
		`{"bury":[{"attribute":"brand","value":"b1","mul":1.5}]}`,
		`{"bury":[{"attribute":"brand","value":"b1","add":0.5}]}`,
		`{"pin":{"i1":-1}}`,
		`{"pin":{"i1":2,"i1":-1}}`,
		`{"pin":{"i1":1.5}}`,
		`{"pin":["i1"]}`,
		`{"typo":1}`,
	} {
		_, nativeErr := New(effective(t, []byte(params)), lookup)
		for _, g := range guests {
			_, err := sdktest.Load(t, sdktest.Build(t, g.src, "")).Start(context.Background(),
				plugin.PluginConfig{Params: json.RawMessage(params)})
			if (err != nil) != (nativeErr != nil) {
				t.Errorf("%s guest, params %s: start error %v, native error %v", g.lang, params, err, nativeErr)
			}
		}
	}
}

// BenchmarkStage compares one stage call over 1000 candidates × 32 features, rule by rule
// and with every rule: the native package against the .wasm through the engine's host.
func BenchmarkStage(b *testing.B) {
	const n = 1000
	in, cols := benchInput(n)
	_, dict := sdktest.Runtime(b)
	lookup := func(space, value string) int32 { return dict.Code(space, value) }
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
		for _, g := range guests {
			p := sdktest.Start(b, sdktest.Build(b, g.src, ""), params)
			win := &plugin.Input{K: 20, IDs: in.IDs, Scores: in.Scores, Features: in.Features, Attrs: in.Attributes}
			var out plugin.Output
			b.Run(tc.name+"/wasm-"+g.lang, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := p.Call(context.Background(), win, &out); err != nil {
						b.Fatal(err)
					}
				}
			})
			for i := range len(out.Keep) { // empty when -bench skipped the wasm run
				if out.Keep[i] != (want.Keep[i] == 1) || out.Pin[i] != want.Pin[i] || out.Scores[i] != want.Scores[i] {
					b.Fatalf("%s, %s guest: candidate %d differs", tc.name, g.lang, i)
				}
			}
		}
	}
}

// TestWasmMatchesNativeRandom runs random rule sets over random requests (ties, NaN
// features, missing attributes, pins beyond the list, both cap modes, codes beyond the
// direct range) through every guest and the native package, and expects identical outputs.
func TestWasmMatchesNativeRandom(t *testing.T) {
	_, dict := sdktest.Runtime(t)
	lookup := func(space, value string) int32 { return dict.Code(space, value) }
	rng := rand.New(rand.NewPCG(5, 6))
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	num := func() string { return strconv.FormatFloat(float64(rng.IntN(40))/4-2, 'g', -1, 32) }
	values := func(attr string) string {
		var vs []string
		for range 1 + rng.IntN(3) {
			vs = append(vs, strconv.Quote(attr[:1]+strconv.Itoa(rng.IntN(14))))
		}
		return `[` + strings.Join(vs, ",") + `]`
	}
	cond := func() string {
		if rng.IntN(2) == 0 {
			a := pick("brand", "category")
			c := `"attribute":"` + a + `","values":` + values(a)
			if rng.IntN(3) == 0 {
				c += `,"missing":true`
			}
			return c
		}
		c := `"feature":"` + pick("stock", "price") + `"`
		for range 1 + rng.IntN(2) {
			c += `,"` + pick("lt", "le", "gt", "ge", "eq", "ne") + `":` + num()
		}
		if rng.IntN(4) == 0 {
			c += `,"missing":true`
		}
		return c
	}
	for trial := range 60 {
		var parts []string
		if rng.IntN(2) == 0 {
			parts = append(parts, `"drop_if":[{`+cond()+`}]`)
		}
		if rng.IntN(2) == 0 {
			parts = append(parts, `"boost":[{`+cond()+`,"add":`+strconv.Itoa(rng.IntN(3))+`,"mul":1.5}]`)
		}
		if rng.IntN(2) == 0 {
			parts = append(parts, `"bury":[{`+cond()+`,"add":-0.25,"mul":0.5}]`)
		}
		if rng.IntN(2) == 0 {
			parts = append(parts, `"pin":{"i`+strconv.Itoa(rng.IntN(50))+`":`+strconv.Itoa(rng.IntN(5))+`,"i`+
				strconv.Itoa(rng.IntN(50))+`":`+strconv.Itoa(rng.IntN(500))+`}`)
		}
		if rng.IntN(4) > 0 {
			parts = append(parts, `"cap":{"attribute":"`+pick("brand", "category")+`","max":`+strconv.Itoa(1+rng.IntN(4))+
				`,"mode":"`+pick("push", "drop")+`"}`)
		} else {
			parts = append(parts, `"cap":null`)
		}
		parts = append(parts, `"features":["stock","price"]`, `"attributes":["brand","category"]`)
		params := []byte(`{` + strings.Join(parts, ",") + `}`)
		n := rng.IntN(120)
		in := Input{IDs: make([]uint32, n), Features: make([]float32, 2*n), Attributes: make([]int32, 2*n), Scores: make([]float32, n)}
		for i := range n {
			in.IDs[i] = uint32(lookup("id", "i"+strconv.Itoa(rng.IntN(60))))
			in.Scores[i] = float32(rng.IntN(20)) / 8
			in.Features[i] = float32(rng.IntN(6) - 1)
			in.Features[n+i] = float32(rng.IntN(12)) / 4
			if rng.IntN(8) == 0 {
				in.Features[n+i] = float32(math.NaN())
			}
			for a, name := range []string{"brand", "category"} {
				in.Attributes[a*n+i] = lookup(name, name[:1]+strconv.Itoa(rng.IntN(14)))
				if rng.IntN(10) == 0 {
					in.Attributes[a*n+i] = -1
				}
			}
		}
		if trial%5 == 4 { // codes beyond the cap's direct range go through its hash table
			for i := range in.Attributes {
				if in.Attributes[i] >= 0 {
					in.Attributes[i] += 1 << 16
				}
			}
		}
		r, err := New(effective(t, params), lookup)
		if err != nil {
			t.Fatalf("%s: %v", params, err)
		}
		want := Output{Keep: make([]uint8, n), Scores: make([]float32, n), Pin: make([]int32, n)}
		if err := r.Apply(in, want); err != nil {
			t.Fatal(err)
		}
		for _, g := range guests {
			p := sdktest.Start(t, sdktest.Build(t, g.src, ""), params)
			var out plugin.Output
			if err := p.Call(context.Background(), &plugin.Input{K: 10, IDs: in.IDs, Scores: in.Scores, Features: in.Features,
				Attrs: in.Attributes}, &out); err != nil {
				t.Fatalf("%s guest, %s: %v", g.lang, params, err)
			}
			for i := range n {
				if out.Keep[i] != (want.Keep[i] == 1) || out.Pin[i] != want.Pin[i] ||
					math.Float32bits(out.Scores[i]) != math.Float32bits(want.Scores[i]) {
					t.Fatalf("%s guest, %s, candidate %d of %d: keep %v pin %d score %v, native keep %d pin %d score %v",
						g.lang, params, i, n, out.Keep[i], out.Pin[i], out.Scores[i], want.Keep[i], want.Pin[i], want.Scores[i])
				}
			}
		}
	}
}
