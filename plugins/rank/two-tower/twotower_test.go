package twotower

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
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

func TestRankTable(t *testing.T) {
	nan := float32(math.NaN())
	tests := []struct {
		name   string
		params string
		in     Input
		want   []float32
	}{
		{"dot", `{"features":[]}`,
			Input{Query: []float32{1, 2}, Embeddings: []float32{3, 4, -1, 0}, Scores: []float32{9, 9}},
			[]float32{11, -1}},
		{"dot weight bias", `{"weight":0.5,"bias_feature":"pop","bias_weight":2,"features":["x","pop"]}`,
			Input{Query: []float32{1, 2}, Embeddings: []float32{3, 4, -1, 0}, Features: []float32{7, 7, 1, nan}, Scores: []float32{0, 0}},
			[]float32{0.5*11 + 2*1, -0.5}}, // a missing bias adds nothing
		{"cosine", `{"similarity":"cosine","features":[]}`,
			Input{Query: []float32{3, 4}, Embeddings: []float32{6, 8, 0, 0, -4, 3}, Scores: []float32{0, 0, 0}},
			[]float32{1, 0, 0}}, // a zero vector scores 0
		{"log1p bias", `{"bias_feature":"pop","bias_weight":1,"bias_transform":"log1p","features":["pop"]}`,
			Input{Query: []float32{1}, Embeddings: []float32{0, 0}, Features: []float32{float32(math.E - 1), -5}, Scores: []float32{0, 0}},
			[]float32{1, 0}}, // negative counts clamp to 0
		{"no query: incoming scores", `{"bias_feature":"pop","bias_weight":1,"features":["pop"]}`,
			Input{Embeddings: []float32{1, 2}, Features: []float32{5, 5}, Scores: []float32{0.25, 0.75}},
			[]float32{0.25, 0.75}},
		{"no embeddings: incoming scores", `{"features":[]}`,
			Input{Query: []float32{1, 2}, Scores: []float32{3, 1}},
			[]float32{3, 1}},
		{"non-finite similarity", `{"features":[]}`,
			Input{Query: []float32{1}, Embeddings: []float32{nan, float32(math.Inf(1)), 2}, Scores: []float32{0, 0, 0}},
			[]float32{0, 0, 2}},
		{"kernel overflow", `{"features":[]}`,
			Input{Query: []float32{1e30}, Embeddings: []float32{1e30}, Scores: []float32{0}},
			[]float32{0}}, // 1e60 overflows float32 in the kernel: +Inf counts as 0
		{"weight overflow clamps", `{"weight":1e30,"features":[]}`,
			Input{Query: []float32{1e30}, Embeddings: []float32{-1e8}, Scores: []float32{0}},
			[]float32{-math.MaxFloat32}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := New([]byte(tc.params), NativeKernels)
			if err != nil {
				t.Fatal(err)
			}
			out := make([]float32, len(tc.want))
			if err := r.Rank(tc.in, out); err != nil {
				t.Fatal(err)
			}
			for i := range out {
				if math.Abs(float64(out[i]-tc.want[i])) > 1e-6 {
					t.Fatalf("got %v, want %v", out, tc.want)
				}
			}
		})
	}
}

func TestErrors(t *testing.T) {
	bad := []struct{ params, msg string }{
		{`{"similarity":"l2"}`, "similarity"},
		{`{"bias_feature":"pop","features":["x"]}`, `bias_feature "pop"`},
		{`{"bias_transform":"sqrt"}`, "bias_transform"},
		{`{"wieght":1}`, "unknown field"},
		{`{"weight":"1"}`, "weight"},
		{`{} []`, "trailing"},
		{`nul`, "invalid params"},
	}
	for _, tc := range bad {
		if _, err := New([]byte(tc.params), NativeKernels); !errors.Is(err, ErrParams) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: got %v, want an error saying %q", tc.params, err, tc.msg)
		}
	}
	if _, err := New([]byte(`{"similarity":"cosine"}`), Kernels{Dot: Dot}); !errors.Is(err, ErrParams) {
		t.Errorf("missing kernel: got %v", err)
	}
	r, err := New([]byte(`{"features":["a"]}`), NativeKernels)
	if err != nil {
		t.Fatal(err)
	}
	inputs := []Input{
		{Query: []float32{1, 2}, Embeddings: []float32{1, 2, 3}, Features: []float32{0, 0}, Scores: []float32{0, 0}},
		{Query: []float32{1}, Embeddings: []float32{1, 2}, Features: []float32{0}, Scores: []float32{0, 0}},
		{Query: []float32{1}, Embeddings: []float32{1, 2}, Features: []float32{0, 0}, Scores: []float32{0}},
	}
	for i, in := range inputs {
		if err := r.Rank(in, make([]float32, 2)); !errors.Is(err, ErrInput) {
			t.Errorf("input %d: got %v, want ErrInput", i, err)
		}
	}
}

// TestKernels checks Dot and Cosine against float64 arithmetic, over lengths that exercise
// the unrolled loop and its tail.
func TestKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for dim := 1; dim <= 9; dim++ {
		q := make([]float32, dim)
		rows := make([]float32, 3*dim)
		for i := range q {
			q[i] = float32(rng.NormFloat64())
		}
		for i := range rows {
			rows[i] = float32(rng.NormFloat64())
		}
		dots, coss := make([]float32, 3), make([]float32, 3)
		Dot(q, rows, dots)
		Cosine(q, rows, coss)
		for i := range 3 {
			var d, qq, rr float64
			for j := range dim {
				a, b := float64(q[j]), float64(rows[i*dim+j])
				d, qq, rr = d+a*b, qq+a*a, rr+b*b
			}
			if math.Abs(float64(dots[i])-d) > 1e-5 || math.Abs(float64(coss[i])-d/math.Sqrt(qq*rr)) > 1e-5 {
				t.Fatalf("dim %d row %d: dot %v cos %v, want %v %v", dim, i, dots[i], coss[i], d, d/math.Sqrt(qq*rr))
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

// GoldenCase is one case of testdata/golden.json: params, the ABI inputs and the expected
// scores. The Wasm golden test runs the same cases through the built plugin.
type GoldenCase struct {
	Name       string          `json:"name"`
	Params     json.RawMessage `json:"params"`
	N          int             `json:"n"`
	Dim        int             `json:"dim"`
	Query      floats          `json:"query"`
	Embeddings floats          `json:"embeddings"`
	Features   floats          `json:"features"`
	Scores     floats          `json:"scores"`
	Want       floats          `json:"want"`
}

// goldenCases builds the golden inputs: deterministic, with missing features and a zero
// embedding.
func goldenCases() []GoldenCase {
	rng := rand.New(rand.NewPCG(42, 0))
	gen := func(name, params string, n, dim int, query bool) GoldenCase {
		c := GoldenCase{Name: name, Params: json.RawMessage(params), N: n, Dim: dim}
		if query {
			for range dim {
				c.Query = append(c.Query, float32(rng.NormFloat64()))
			}
		}
		for range n * dim {
			c.Embeddings = append(c.Embeddings, float32(rng.NormFloat64()))
		}
		if n > 3 {
			clear(c.Embeddings[3*dim : 4*dim])
		}
		for range 2 * n { // popularity, retrieval_score
			v := float32(rng.ExpFloat64() * 3)
			if rng.IntN(8) == 0 {
				v = float32(math.NaN())
			}
			c.Features = append(c.Features, v)
		}
		for range n {
			c.Scores = append(c.Scores, float32(rng.Float64()))
		}
		return c
	}
	const feats = `"features":["popularity","retrieval_score"]`
	return []GoldenCase{
		gen("dot+log1p popularity", `{"similarity":"dot","bias_feature":"popularity","bias_weight":0.1,"bias_transform":"log1p",`+feats+`}`, 40, 16, true),
		gen("cosine", `{"similarity":"cosine",`+feats+`}`, 33, 7, true),
		gen("dot+retrieval_score", `{"weight":2,"bias_feature":"retrieval_score","bias_weight":-0.5,`+feats+`}`, 70, 64, true),
		gen("no query", `{"bias_feature":"popularity","bias_weight":1,`+feats+`}`, 20, 8, false),
	}
}

func rankCase(t *testing.T, c *GoldenCase) []float32 {
	t.Helper()
	r, err := New(effective(t, c.Params), NativeKernels)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, c.N)
	if err := r.Rank(Input{Query: c.Query, Embeddings: c.Embeddings, Features: c.Features, Scores: c.Scores}, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGolden compares against testdata/golden.json; go test -update rewrites it.
func TestGolden(t *testing.T) {
	path := filepath.Join("testdata", "golden.json")
	if updating() {
		cases := goldenCases()
		for i := range cases {
			cases[i].Want = rankCase(t, &cases[i])
		}
		var b bytes.Buffer
		b.WriteString("[\n")
		for i := range cases {
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
		got := rankCase(t, c)
		for j := range got {
			if got[j] != c.Want[j] {
				t.Fatalf("%s: candidate %d scored %v, golden %v", c.Name, j, got[j], c.Want[j])
			}
		}
	}
}

func FuzzDecodeParams(f *testing.F) {
	f.Add([]byte(`{"similarity":"cosine","bias_feature":"a","bias_weight":1,"features":["a"]}`))
	f.Add([]byte(`{"weight":null,"bias_transform":"log1p"}`))
	f.Add([]byte(`{"weight":1e40}`))
	f.Fuzz(func(t *testing.T, params []byte) {
		r, err := New(params, NativeKernels)
		if err != nil {
			if !errors.Is(err, ErrParams) {
				t.Fatalf("error %v does not wrap ErrParams", err)
			}
			return
		}
		n := 3
		in := Input{Query: []float32{1, -1}, Embeddings: []float32{1, 2, 3, 4, 5, 6},
			Features: make([]float32, r.ncols*n), Scores: []float32{1, 2, 3}}
		out := make([]float32, n)
		if err := r.Rank(in, out); err != nil {
			t.Fatal(err)
		}
		for _, v := range out {
			if !finite(v) {
				t.Fatalf("score %v", v)
			}
		}
	})
}
