package merch

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The -update flag rewrites testdata/golden.json. sdk/sdktest, which the Wasm tests import,
// defines a flag of that name for its own goldens; both honour it.
var _ = func() bool {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite testdata/golden.json")
	}
	return true
}()

func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// table is a Lookup over fixed maps: "b<n>" brands, "c<n>" categories and "i<n>" ids
// resolve to n when n < 1000.
func table(space, value string) int32 {
	prefix := map[string]string{"brand": "b", "category": "c", "id": "i"}[space]
	if prefix == "" || !strings.HasPrefix(value, prefix) {
		return -1
	}
	n, err := strconv.Atoi(value[len(prefix):])
	if err != nil || n < 0 || n >= 1000 {
		return -1
	}
	return int32(n)
}

func run(t *testing.T, params string, in Input) (Output, *Rules) {
	t.Helper()
	r, err := New([]byte(params), table)
	if err != nil {
		t.Fatal(err)
	}
	n := len(in.Scores)
	out := Output{Keep: make([]uint8, n), Scores: make([]float32, n), Pin: make([]int32, n)}
	// Junk in the outputs: Apply must write every entry.
	for i := range n {
		out.Keep[i], out.Scores[i], out.Pin[i] = 7, -99, 99
	}
	if err := r.Apply(in, out); err != nil {
		t.Fatal(err)
	}
	return out, r
}

func TestApplyTable(t *testing.T) {
	nan := float32(math.NaN())
	// Five candidates: ids 10..14, features stock and price, attributes brand and category.
	in := Input{
		IDs:        []uint32{10, 11, 12, 13, 14},
		Features:   []float32{5, 0, -1, nan, 3 /* stock */, 10, 20, 30, 40, nan /* price */},
		Attributes: []int32{7, 7, 9, -1, 7 /* brand */, 1, 2, 1, 2, -1 /* category */},
		Scores:     []float32{0.9, 0.8, 0.7, 0.6, 0.5},
	}
	const cols = `"features":["stock","price"],"attributes":["brand","category"]`
	tests := []struct {
		name   string
		params string
		keep   []uint8
		scores []float32
		pins   []int32
	}{
		{"no rules", `{` + cols + `}`,
			[]uint8{1, 1, 1, 1, 1}, []float32{0.9, 0.8, 0.7, 0.6, 0.5}, []int32{-1, -1, -1, -1, -1}},
		{"drop out of stock", `{"drop_if":{"feature":"stock","le":0},` + cols + `}`,
			[]uint8{1, 0, 0, 1, 1}, nil, nil}, // missing stock is not "≤ 0"
		{"drop missing too", `{"drop_if":[{"feature":"stock","le":0},{"feature":"stock","missing":true}],` + cols + `}`,
			[]uint8{1, 0, 0, 0, 1}, nil, nil},
		{"drop range", `{"drop_if":{"feature":"price","gt":15,"lt":35},` + cols + `}`,
			[]uint8{1, 0, 0, 1, 1}, nil, nil},
		{"drop eq ne ge", `{"drop_if":[{"feature":"price","eq":10},{"feature":"stock","ge":5,"ne":6}],` + cols + `}`,
			[]uint8{0, 1, 1, 1, 1}, nil, nil},
		{"drop brand", `{"drop_if":{"attribute":"brand","values":["b9","b404x"]},` + cols + `}`,
			[]uint8{1, 1, 0, 1, 1}, nil, nil},
		{"drop no brand", `{"drop_if":{"attribute":"brand","missing":true},` + cols + `}`,
			[]uint8{1, 1, 1, 0, 1}, nil, nil},
		{"boost add", `{"boost":[{"attribute":"brand","value":"b9","add":0.5}],` + cols + `}`,
			nil, []float32{0.9, 0.8, 1.2, 0.6, 0.5}, nil},
		{"boost mul then bury", `{"boost":[{"attribute":"category","value":"c2","mul":2}],"bury":[{"attribute":"brand","value":"b7","add":-0.1,"mul":0.5}],` + cols + `}`,
			nil, []float32{0.9*0.5 - 0.1, 0.8*2*0.5 - 0.1, 0.7, 1.2, 0.5*0.5 - 0.1}, nil},
		{"boost by feature", `{"boost":[{"feature":"price","ge":30,"add":1}],` + cols + `}`,
			nil, []float32{0.9, 0.8, 1.7, 1.6, 0.5}, nil},
		{"pin", `{"pin":{"i13":0,"i10":2,"i99":1,"i-x":0},` + cols + `}`,
			nil, nil, []int32{2, -1, -1, 0, -1}},
		{"pin past the end", `{"pin":{"i11":40},` + cols + `}`,
			nil, nil, []int32{-1, 4, -1, -1, -1}},
		{"dropped are not pinned", `{"pin":{"i11":0},"drop_if":{"feature":"stock","le":0},` + cols + `}`,
			[]uint8{1, 0, 0, 1, 1}, nil, []int32{-1, -1, -1, -1, -1}},
		{"cap drop", `{"cap":{"attribute":"brand","max":1,"mode":"drop"},` + cols + `}`,
			[]uint8{1, 0, 1, 1, 0}, nil, nil},
		// A push subtracts (highest over-cap score − lowest kept score + 1).
		{"cap push, already below", `{"cap":{"attribute":"brand","max":2},` + cols + `}`,
			[]uint8{1, 1, 1, 1, 1}, []float32{0.9, 0.8, 0.7, 0.6, 0.5 - 1}, nil},
		{"cap push", `{"cap":{"attribute":"brand","max":1},` + cols + `}`,
			[]uint8{1, 1, 1, 1, 1}, []float32{0.9, 0.8 - 1.3, 0.7, 0.6, 0.5 - 1.3}, nil}, // 0.8 − 0.5 + 1
		{"cap after boost", `{"boost":[{"attribute":"category","value":"c2","add":1}],"cap":{"attribute":"brand","max":1,"mode":"drop"},` + cols + `}`,
			[]uint8{0, 1, 1, 1, 0}, []float32{0.9, 1.8, 0.7, 1.6, 0.5}, nil},
		{"pinned exempt from cap", `{"pin":{"i10":3},"cap":{"attribute":"brand","max":1,"mode":"drop"},` + cols + `}`,
			[]uint8{1, 1, 1, 1, 0}, nil, []int32{3, -1, -1, -1, -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, _ := run(t, tc.params, in)
			if tc.keep != nil && !slices.Equal(out.Keep, tc.keep) {
				t.Errorf("keep %v, want %v", out.Keep, tc.keep)
			}
			if tc.scores != nil {
				for i := range out.Scores {
					if math.Abs(float64(out.Scores[i]-tc.scores[i])) > 1e-6 {
						t.Errorf("scores %v, want %v", out.Scores, tc.scores)
						break
					}
				}
			}
			if tc.pins != nil && !slices.Equal(out.Pin, tc.pins) {
				t.Errorf("pins %v, want %v", out.Pin, tc.pins)
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	r, err := New([]byte(`{"pin":{"x1":0,"i3":1},"boost":[{"attribute":"brand","values":["b1","nope"],"add":1}],"attributes":["brand"]}`), table)
	if err != nil {
		t.Fatal(err)
	}
	w := strings.Join(r.Warnings(), "\n")
	if !strings.Contains(w, `"x1"`) || !strings.Contains(w, `"nope"`) || strings.Contains(w, `"i3"`) {
		t.Fatalf("warnings %q", w)
	}
}

func TestParamErrors(t *testing.T) {
	bad := []struct{ params, msg string }{
		{`{"drop_if":{"feature":"stock","le":0}}`, `feature "stock" is not in`},
		{`{"drop_if":{"feature":"stock"},"features":["stock"]}`, "no comparison"},
		{`{"drop_if":{"feature":"stock","le":0,"attribute":"brand"},"features":["stock"]}`, "not both"},
		{`{"drop_if":{"feature":"stock","value":"x","le":0},"features":["stock"]}`, "value and values"},
		{`{"drop_if":{"attribute":"brand","le":1},"attributes":["brand"]}`, "comparisons go with feature"},
		{`{"drop_if":{"attribute":"brand"},"attributes":["brand"]}`, "no value"},
		{`{"drop_if":{"attribute":"colour","value":"red"},"attributes":["brand"]}`, `attribute "colour"`},
		{`{"drop_if":{}}`, "a feature or an attribute"},
		{`{"drop_if":{"feature":"s","lte":0},"features":["s"]}`, "unknown field"},
		{`{"drop_if":[{"feature":"s","le":0,"x":1}],"features":["s"]}`, "unknown field"},
		{`{"boost":[{"attribute":"brand","value":"b1","add":-1}],"attributes":["brand"]}`, "use bury"},
		{`{"boost":[{"attribute":"brand","value":"b1","mul":0.5}],"attributes":["brand"]}`, "use bury"},
		{`{"bury":[{"attribute":"brand","value":"b1","add":1}],"attributes":["brand"]}`, "bury needs"},
		{`{"bury":[{"attribute":"brand","value":"b1","mul":2}],"attributes":["brand"]}`, "bury needs"},
		{`{"bury":[{"attribute":"brand","value":"b1","typo":2}],"attributes":["brand"]}`, "unknown field"},
		{`{"pin":{"i1":-1}}`, "positions start at 0"},
		{`{"pin":{"i1":"top"}}`, "pin"},
		{`{"cap":{"attribute":"brand","max":0},"attributes":["brand"]}`, "max 0"},
		{`{"cap":{"attribute":"brand","max":2}}`, `cap: attribute "brand"`},
		{`{"cap":{"attribute":"brand","max":2,"mode":"hide"},"attributes":["brand"]}`, "mode"},
		{`{"caps":{}}`, "unknown field"},
		{`{} {}`, "trailing"},
	}
	for _, tc := range bad {
		if _, err := New([]byte(tc.params), table); !errors.Is(err, ErrParams) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: got %v, want an error saying %q", tc.params, err, tc.msg)
		}
	}
}

func TestInputErrors(t *testing.T) {
	r, err := New([]byte(`{"features":["a"],"attributes":["brand"]}`), table)
	if err != nil {
		t.Fatal(err)
	}
	ok := Input{IDs: []uint32{1, 2}, Features: []float32{0, 0}, Attributes: []int32{0, 0}, Scores: []float32{0, 0}}
	out := Output{Keep: make([]uint8, 2), Scores: make([]float32, 2), Pin: make([]int32, 2)}
	if err := r.Apply(ok, out); err != nil {
		t.Fatal(err)
	}
	for i, mutate := range []func(in *Input, o *Output){
		func(in *Input, o *Output) { in.IDs = in.IDs[:1] },
		func(in *Input, o *Output) { in.Features = nil },
		func(in *Input, o *Output) { in.Attributes = in.Attributes[:1] },
		func(in *Input, o *Output) { o.Pin = nil },
	} {
		in, o := ok, out
		mutate(&in, &o)
		if err := r.Apply(in, o); !errors.Is(err, ErrInput) {
			t.Errorf("case %d: got %v, want ErrInput", i, err)
		}
	}
}

// refCap is the cap spelled out: walk the kept, unpinned candidates with a value in score
// order (ties to the lower index) and count per value.
func refCap(codes []int32, keep []uint8, pins []int32, scores []float32, max int) []bool {
	order := make([]int, len(codes))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case scores[a] > scores[b]:
			return -1
		case scores[a] < scores[b]:
			return 1
		}
		return a - b
	})
	in := make([]bool, len(codes))
	count := map[int32]int{}
	for _, i := range order {
		in[i] = true
		if codes[i] < 0 || keep[i] == 0 || pins[i] >= 0 {
			continue
		}
		count[codes[i]]++
		in[i] = count[codes[i]] <= max
	}
	return in
}

// TestCapMatchesReference drives the heap-based cap with random lists, ties included,
// against refCap.
func TestCapMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for iter := range 300 {
		n := 1 + rng.IntN(200)
		maxPer := 1 + rng.IntN(6)
		groups := 1 + rng.IntN(20)
		// Small codes are slots themselves; large ones go through the hash table.
		scale := []int32{37, 100_003}[iter%2]
		in := Input{IDs: make([]uint32, n), Attributes: make([]int32, n), Scores: make([]float32, n)}
		for i := range n {
			in.IDs[i] = uint32(i)
			in.Attributes[i] = int32(rng.IntN(groups)) * scale
			if rng.IntN(10) == 0 {
				in.Attributes[i] = -1
			}
			in.Scores[i] = float32(rng.IntN(50)) / 10 // many ties
		}
		pins := map[string]int{}
		for range rng.IntN(3) {
			pins["i"+strconv.Itoa(rng.IntN(n))] = rng.IntN(5)
		}
		params := Params{Attributes: []string{"brand"}, Pin: pins, Cap: &Cap{Attribute: "brand", Max: maxPer, Mode: "drop"},
			DropIf: Conditions{{Attribute: "brand", Values: []string{"b37"}}}}
		r, err := NewFromParams(params, table)
		if err != nil {
			t.Fatal(err)
		}
		out := Output{Keep: make([]uint8, n), Scores: make([]float32, n), Pin: make([]int32, n)}
		if err := r.Apply(in, out); err != nil {
			t.Fatal(err)
		}
		// Recompute what the cap saw: drops and pins, before the cap.
		keep := make([]uint8, n)
		for i := range keep {
			keep[i] = 1
			if in.Attributes[i] == 37 {
				keep[i] = 0
			}
		}
		if scale != 37 { // the drop rule names b37, which only the small codes use
			for i := range keep {
				keep[i] = 1
			}
		}
		want := refCap(in.Attributes, keep, out.Pin, in.Scores, maxPer)
		for i := range n {
			if got := out.Keep[i] == 1; got != (keep[i] == 1 && want[i]) {
				t.Fatalf("iter %d (n %d, max %d) candidate %d code %d score %v: kept %v, reference %v",
					iter, n, maxPer, i, in.Attributes[i], in.Scores[i], got, keep[i] == 1 && want[i])
			}
		}
		// Push mode: the same candidates overflow, and every overflowing one ends below
		// every kept one within its cap, in the same relative order.
		params.Cap.Mode = "push"
		r, err = NewFromParams(params, table)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Apply(in, out); err != nil {
			t.Fatal(err)
		}
		lo := float32(math.Inf(1))
		for i := range n {
			if keep[i] == 1 && want[i] {
				lo = min(lo, out.Scores[i])
			}
		}
		for i := range n {
			if keep[i] == 1 && !want[i] {
				if out.Scores[i] >= lo {
					t.Fatalf("iter %d: pushed candidate %d scores %v, not below %v", iter, i, out.Scores[i], lo)
				}
				for j := range n {
					if keep[j] == 1 && !want[j] && (in.Scores[i] < in.Scores[j]) != (out.Scores[i] < out.Scores[j]) {
						t.Fatalf("iter %d: push changed the order of %d and %d", iter, i, j)
					}
				}
			} else if out.Scores[i] != in.Scores[i] {
				t.Fatalf("iter %d: candidate %d within its cap moved from %v to %v", iter, i, in.Scores[i], out.Scores[i])
			}
		}
	}
}

// floats is a []float32 that JSON-encodes NaN (a missing feature) as null.
type floats []float32

func (f floats) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, v := range f {
		if i > 0 {
			b.WriteByte(',')
		}
		if v != v {
			b.WriteString("null")
			continue
		}
		x, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		b.Write(x)
	}
	b.WriteByte(']')
	return b.Bytes(), nil
}

func (f *floats) UnmarshalJSON(b []byte) error {
	var raw []*float32
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*f = make(floats, len(raw))
	for i, p := range raw {
		(*f)[i] = float32(math.NaN())
		if p != nil {
			(*f)[i] = *p
		}
	}
	return nil
}

// GoldenCase is one case of testdata/golden.json: params, the ABI inputs, the lookup table
// the host would answer with, and the expected outputs. The Wasm golden test runs the same
// cases through the built plugin.
type GoldenCase struct {
	Name       string                      `json:"name"`
	Params     json.RawMessage             `json:"params"`
	Lookup     map[string]map[string]int32 `json:"lookup"`
	IDs        []uint32                    `json:"ids"`
	Features   floats                      `json:"features"`
	Attributes []int32                     `json:"attributes"`
	Scores     floats                      `json:"scores"`
	Keep       []uint8                     `json:"keep"`
	OutScores  floats                      `json:"out_scores"`
	Pin        []int32                     `json:"pin"`
}

// LookupFunc returns the case's lookup table as a Lookup.
func (c *GoldenCase) LookupFunc() Lookup {
	return func(space, value string) int32 {
		if v, ok := c.Lookup[space][value]; ok {
			return v
		}
		return -1
	}
}

func goldenCases() []GoldenCase {
	rng := rand.New(rand.NewPCG(11, 0))
	gen := func(name, params string, n int) GoldenCase {
		c := GoldenCase{Name: name, Params: json.RawMessage(params), Lookup: map[string]map[string]int32{
			"brand": {}, "category": {}, "id": {}}}
		for b := range 12 {
			c.Lookup["brand"]["b"+strconv.Itoa(b)] = int32(b * 3)
		}
		for k := range 5 {
			c.Lookup["category"]["c"+strconv.Itoa(k)] = int32(k)
		}
		for i := range n {
			id := uint32(1000 + i*7)
			c.IDs = append(c.IDs, id)
			c.Lookup["id"]["i"+strconv.Itoa(int(id))] = int32(id)
		}
		for range n { // stock
			c.Features = append(c.Features, float32(rng.IntN(6)-1))
		}
		for range n { // price
			v := float32(5 + rng.Float64()*50)
			if rng.IntN(10) == 0 {
				v = float32(math.NaN())
			}
			c.Features = append(c.Features, v)
		}
		for range n { // brand
			v := int32(rng.IntN(12) * 3)
			if rng.IntN(15) == 0 {
				v = -1
			}
			c.Attributes = append(c.Attributes, v)
		}
		for range n { // category
			c.Attributes = append(c.Attributes, int32(rng.IntN(5)))
		}
		for range n {
			c.Scores = append(c.Scores, float32(rng.IntN(1000))/1000)
		}
		return c
	}
	const cols = `"features":["stock","price"],"attributes":["brand","category"]`
	return []GoldenCase{
		gen("everything, cap push", `{"drop_if":[{"feature":"stock","le":0},{"feature":"price","missing":true}],`+
			`"boost":[{"attribute":"brand","values":["b7","b2"],"add":0.25},{"attribute":"category","value":"c1","mul":1.5}],`+
			`"bury":[{"feature":"price","gt":40,"mul":0.5}],"pin":{"i1000":0,"i1070":3,"i9":1},`+
			`"cap":{"attribute":"brand","max":2},`+cols+`}`, 60),
		gen("cap drop by category", `{"cap":{"attribute":"category","max":3,"mode":"drop"},`+cols+`}`, 40),
		gen("drop brands", `{"drop_if":{"attribute":"brand","values":["b1","b3","nope"]},`+cols+`}`, 30),
		gen("no rules", `{`+cols+`}`, 10),
	}
}

func applyCase(t *testing.T, c *GoldenCase) Output {
	t.Helper()
	r, err := New(effective(t, c.Params), c.LookupFunc())
	if err != nil {
		t.Fatalf("%s: %v", c.Name, err)
	}
	n := len(c.Scores)
	out := Output{Keep: make([]uint8, n), Scores: make([]float32, n), Pin: make([]int32, n)}
	if err := r.Apply(Input{IDs: c.IDs, Features: c.Features, Attributes: c.Attributes, Scores: c.Scores}, out); err != nil {
		t.Fatalf("%s: %v", c.Name, err)
	}
	return out
}

// TestGolden compares against testdata/golden.json; go test -update rewrites it.
func TestGolden(t *testing.T) {
	path := filepath.Join("testdata", "golden.json")
	if updating() {
		cases := goldenCases()
		var b bytes.Buffer
		b.WriteString("[\n")
		for i := range cases {
			out := applyCase(t, &cases[i])
			cases[i].Keep, cases[i].OutScores, cases[i].Pin = out.Keep, out.Scores, out.Pin
			line, err := json.Marshal(&cases[i])
			if err != nil {
				t.Fatal(err)
			}
			b.Write(line)
			if i < len(cases)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		b.WriteString("]\n")
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cases []GoldenCase
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatal("no golden cases")
	}
	for i := range cases {
		c := &cases[i]
		out := applyCase(t, c)
		if !slices.Equal(out.Keep, c.Keep) || !slices.Equal(out.Pin, c.Pin) ||
			!reflect.DeepEqual([]float32(out.Scores), []float32(c.OutScores)) {
			t.Errorf("%s: got keep %v pin %v scores %v\nwant keep %v pin %v scores %v", c.Name,
				out.Keep, out.Pin, out.Scores, c.Keep, c.Pin, c.OutScores)
		}
	}
}

func FuzzNew(f *testing.F) {
	f.Add([]byte(`{"drop_if":{"feature":"stock","le":0},"features":["stock"],"attributes":["brand"]}`))
	f.Add([]byte(`{"boost":[{"attribute":"brand","values":["b1","b2"],"add":1,"mul":2}],"pin":{"i3":1},` +
		`"cap":{"attribute":"brand","max":1,"mode":"drop"},"attributes":["brand"]}`))
	f.Add([]byte(`{"drop_if":[{"attribute":"brand","missing":true}],"bury":[{"feature":"a","ne":1,"mul":0}],"features":["a"],"attributes":["brand"]}`))
	f.Fuzz(func(t *testing.T, params []byte) {
		r, err := New(params, table)
		if err != nil {
			if !errors.Is(err, ErrParams) {
				t.Fatalf("error %v does not wrap ErrParams", err)
			}
			return
		}
		n := 6
		in := Input{IDs: []uint32{0, 1, 2, 3, 4, 5}, Features: make([]float32, r.c.nfeat*n),
			Attributes: make([]int32, r.c.nattr*n), Scores: []float32{6, 5, 4, 3, 2, 1}}
		for i := range in.Attributes {
			in.Attributes[i] = int32(i%3) - 1
		}
		out := Output{Keep: make([]uint8, n), Scores: make([]float32, n), Pin: make([]int32, n)}
		if err := r.Apply(in, out); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if out.Keep[i] > 1 || !finite(out.Scores[i]) || out.Pin[i] < -1 || out.Pin[i] >= int32(n) {
				t.Fatalf("bad output %d: keep %d score %v pin %d", i, out.Keep[i], out.Scores[i], out.Pin[i])
			}
		}
	})
}

// TestLargeCodes covers attribute codes too large for a condition's bitmap: the sorted-codes
// path must give the same answers.
func TestLargeCodes(t *testing.T) {
	big := func(space, value string) int32 {
		switch value {
		case "huge":
			return 5_000_000
		case "small":
			return 3
		}
		return -1
	}
	r, err := New([]byte(`{"drop_if":{"attribute":"brand","values":["huge","small"]},`+
		`"boost":[{"attribute":"brand","value":"huge","add":1},{"attribute":"brand","missing":true,"values":["huge"],"add":2}],`+
		`"attributes":["brand"]}`), big)
	if err != nil {
		t.Fatal(err)
	}
	in := Input{IDs: []uint32{0, 1, 2, 3}, Attributes: []int32{5_000_000, 3, -1, 4}, Scores: []float32{0, 0, 0, 0}}
	out := Output{Keep: make([]uint8, 4), Scores: make([]float32, 4), Pin: make([]int32, 4)}
	if err := r.Apply(in, out); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(out.Keep, []uint8{0, 0, 1, 1}) || !slices.Equal(out.Scores, []float32{3, 0, 2, 0}) {
		t.Fatalf("keep %v scores %v", out.Keep, out.Scores)
	}
}

// TestPrefilled checks that Apply on prefilled outputs gives what it gives on fresh ones.
func TestPrefilled(t *testing.T) {
	for _, c := range goldenCases() {
		r, err := New(effective(t, c.Params), c.LookupFunc())
		if err != nil {
			t.Fatal(err)
		}
		n := len(c.Scores)
		in := Input{IDs: c.IDs, Features: c.Features, Attributes: c.Attributes, Scores: c.Scores}
		fresh := Output{Keep: make([]uint8, n), Scores: make([]float32, n), Pin: make([]int32, n)}
		pre := Output{Keep: make([]uint8, n), Scores: slices.Clone([]float32(c.Scores)), Pin: make([]int32, n), Prefilled: true}
		for i := range n {
			pre.Keep[i], pre.Pin[i] = 1, -1
		}
		if err := r.Apply(in, fresh); err != nil {
			t.Fatal(err)
		}
		if err := r.Apply(in, pre); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(fresh.Keep, pre.Keep) || !slices.Equal(fresh.Pin, pre.Pin) || !slices.Equal(fresh.Scores, pre.Scores) {
			t.Fatalf("%s: prefilled outputs differ:\n%v %v %v\n%v %v %v", c.Name, fresh.Keep, fresh.Pin, fresh.Scores, pre.Keep, pre.Pin, pre.Scores)
		}
	}
}

// TestApplyRepeats checks that one Rules gives the same outputs call after call: its cap
// scratch must be clean between calls. (It was not: a regression test.)
func TestApplyRepeats(t *testing.T) {
	for _, c := range goldenCases() {
		r, err := New(effective(t, c.Params), c.LookupFunc())
		if err != nil {
			t.Fatal(err)
		}
		n := len(c.Scores)
		in := Input{IDs: c.IDs, Features: c.Features, Attributes: c.Attributes, Scores: c.Scores}
		var first Output
		for call := range 3 {
			out := Output{Keep: make([]uint8, n), Scores: make([]float32, n), Pin: make([]int32, n)}
			if err := r.Apply(in, out); err != nil {
				t.Fatal(err)
			}
			if call == 0 {
				first = out
				continue
			}
			if !slices.Equal(first.Keep, out.Keep) || !slices.Equal(first.Pin, out.Pin) || !slices.Equal(first.Scores, out.Scores) {
				t.Fatalf("%s: call %d differs from the first", c.Name, call)
			}
		}
	}
}
