package mmr

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
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

func order(t *testing.T, params string, in Input, k int) []int32 {
	t.Helper()
	d, err := New([]byte(params), NativeKernels)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int32, k+3)
	m, err := d.Order(in, k, out)
	if err != nil {
		t.Fatal(err)
	}
	return out[:m]
}

func TestOrderTable(t *testing.T) {
	// Candidates 0 and 1 are the same item twice; 2 is different and a little less relevant;
	// 3 is near 0; 4 is the least relevant and different from all.
	emb := []float32{
		1, 0, 0,
		1, 0, 0,
		0, 1, 0,
		0.9, 0.1, 0,
		0, 0, 1,
	}
	scores := []float32{1, 0.95, 0.9, 0.85, 0.1}
	cats := []int32{5, 5, 6, 5, -1}
	in := Input{Embeddings: emb, Dim: 3, Attributes: cats, Scores: scores}
	const attrs = `"attributes":["category"]`
	tests := []struct {
		name   string
		params string
		k      int
		want   []int32
	}{
		{"lambda 1 is the incoming order", `{"lambda":1,` + attrs + `}`, 5, []int32{0, 1, 2, 3, 4}},
		{"duplicates are pushed back", `{"lambda":0.5,` + attrs + `}`, 3, []int32{0, 2, 4}},
		{"default lambda", `{` + attrs + `}`, 4, []int32{0, 2, 1, 3}}, // relevance outweighs the duplicate
		{"k larger than n", `{"lambda":1,` + attrs + `}`, 9, []int32{0, 1, 2, 3, 4}},
		{"k zero", `{` + attrs + `}`, 0, []int32{}},
		{"cap 1 per category", `{"lambda":1,"attribute":"category","max_per_value":1,` + attrs + `}`, 5,
			[]int32{0, 2, 4, 1, 3}}, // 4 has no category: exempt; then the cap relaxes
		{"pool 2 considers the best two", `{"lambda":0,"pool":2,` + attrs + `}`, 2, []int32{0, 1}},
		{"pool raised to k", `{"lambda":0.5,"pool":1,` + attrs + `}`, 3, []int32{0, 2, 1}}, // 4 is outside the pool of 3
		{"round robin", `{"mode":"round_robin","attribute":"category",` + attrs + `}`, 5,
			[]int32{0, 2, 4, 1, 3}}, // rounds: {0,2,4}, {1}, {3}
		{"round robin, one round", `{"mode":"round_robin","attribute":"category","max_per_value":1,` + attrs + `}`, 5,
			[]int32{0, 2, 4, 1, 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := order(t, tc.params, in, tc.k); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRoundRobinRounds(t *testing.T) {
	// Scores descending by index; values a a a b b c.
	in := Input{Attributes: []int32{1, 1, 1, 2, 2, 3}, Scores: []float32{6, 5, 4, 3, 2, 1}}
	if got := order(t, `{"mode":"round_robin","attribute":"c","attributes":["c"]}`, in, 6); !slices.Equal(got, []int32{0, 3, 5, 1, 4, 2}) {
		t.Fatalf("round robin: %v", got)
	}
	// Two rounds, then score order: a b c a b | a.
	in.Attributes = []int32{1, 1, 1, 1, 2, 3}
	if got := order(t, `{"mode":"round_robin","attribute":"c","max_per_value":1,"attributes":["c"]}`, in, 6); !slices.Equal(got, []int32{0, 4, 5, 1, 2, 3}) {
		t.Fatalf("one round: %v", got)
	}
}

func TestNoEmbeddings(t *testing.T) {
	// Without embeddings every similarity is 0: relevance order, with the cap.
	in := Input{Attributes: []int32{1, 1, 2}, Scores: []float32{3, 2, 1}}
	if got := order(t, `{"attribute":"c","max_per_value":1,"attributes":["c"]}`, in, 3); !slices.Equal(got, []int32{0, 2, 1}) {
		t.Fatalf("got %v", got)
	}
}

func TestErrors(t *testing.T) {
	bad := []struct{ params, msg string }{
		{`{"mode":"dpp"}`, "mode"},
		{`{"lambda":1.5}`, "lambda"},
		{`{"lambda":-0.1}`, "lambda"},
		{`{"pool":-1}`, "pool"},
		{`{"max_per_value":-1,"attribute":"c","attributes":["c"]}`, "max_per_value"},
		{`{"max_per_value":2}`, "needs an attribute"},
		{`{"mode":"round_robin"}`, "needs an attribute"},
		{`{"attribute":"brand","attributes":["category"]}`, `attribute "brand"`},
		{`{"lamda":0.5}`, "unknown field"},
		{`{} 1`, "trailing"},
	}
	for _, tc := range bad {
		if _, err := New([]byte(tc.params), NativeKernels); !errors.Is(err, ErrParams) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: got %v, want an error saying %q", tc.params, err, tc.msg)
		}
	}
	if _, err := New([]byte(`{}`), Kernels{}); !errors.Is(err, ErrParams) {
		t.Errorf("no kernel: got %v", err)
	}
	d, err := New([]byte(`{"attributes":["c"]}`), NativeKernels)
	if err != nil {
		t.Fatal(err)
	}
	for i, in := range []Input{
		{Embeddings: []float32{1, 2, 3}, Dim: 2, Attributes: []int32{0, 0}, Scores: []float32{1, 2}},
		{Embeddings: []float32{1, 2}, Dim: 1, Attributes: []int32{0}, Scores: []float32{1, 2}},
		{Dim: -1, Attributes: []int32{0, 0}, Scores: []float32{1, 2}},
	} {
		if _, err := d.Order(in, 2, make([]int32, 2)); !errors.Is(err, ErrInput) {
			t.Errorf("input %d: got %v, want ErrInput", i, err)
		}
	}
	if _, err := d.Order(Input{Attributes: []int32{0, 0}, Scores: []float32{1, 2}}, 2, make([]int32, 1)); !errors.Is(err, ErrInput) {
		t.Errorf("short order: got %v, want ErrInput", err)
	}
}

// randomInput draws n candidates in clusters (so that diversity matters), with ties in the
// scores and some missing categories.
func randomInput(rng *rand.Rand, n, dim int) Input {
	in := Input{Embeddings: make([]float32, n*dim), Dim: dim, Attributes: make([]int32, n), Scores: make([]float32, n)}
	centres := make([]float64, 8*dim)
	for i := range centres {
		centres[i] = rng.NormFloat64()
	}
	for i := range n {
		c := rng.IntN(8)
		for j := range dim {
			in.Embeddings[i*dim+j] = float32(centres[c*dim+j] + 0.3*rng.NormFloat64())
		}
		in.Attributes[i] = int32(c * 11)
		if rng.IntN(12) == 0 {
			in.Attributes[i] = -1
		}
		in.Scores[i] = float32(rng.IntN(200)) / 10
	}
	if n > 2 {
		clear(in.Embeddings[2*dim : 3*dim]) // a zero vector
	}
	return in
}

// refMMR is MMR spelled out: sort to find the pool, and recompute each candidate's max
// similarity to everything picked at every step, O(k²·pool·dim).
func refMMR(in Input, k int, lambda float32, pool, maxPer int) []int32 {
	n := len(in.Scores)
	m := min(k, n)
	idx := make([]int32, n)
	for i := range idx {
		idx[i] = int32(i)
	}
	slices.SortStableFunc(idx, func(a, b int32) int {
		if better(in.Scores, a, b) {
			return -1
		}
		return 1
	})
	if pool == 0 {
		pool = max(5*m, 100)
	}
	cand := idx[:min(max(pool, m), n)]
	slices.Sort(cand) // the pool is a set; its order must not matter
	lo, hi := float32(math.Inf(1)), float32(math.Inf(-1))
	for _, c := range cand {
		lo, hi = min(lo, in.Scores[c]), max(hi, in.Scores[c])
	}
	row := func(c int32) []float32 { return in.Embeddings[int(c)*in.Dim : (int(c)+1)*in.Dim] }
	inv := func(c int32) float32 {
		ss := dot(row(c), row(c))
		if ss > 0 && ss <= math.MaxFloat32 {
			return float32(1 / math.Sqrt(float64(ss)))
		}
		return 0
	}
	// sim is the cosine as the plugin computes it: the kernel's dot times both inverse norms.
	sim := func(p, c int32) float32 {
		s := dot(row(p), row(c)) * inv(p) * inv(c)
		if !finite(s) {
			return 0
		}
		return s
	}
	var picked []int32
	count := map[int32]int{}
	for len(picked) < m {
		best, bestV := int32(-1), float32(0)
		for pass := 0; pass < 2 && best < 0; pass++ {
			for _, c := range cand {
				if slices.Contains(picked, c) {
					continue
				}
				code := in.Attributes[c]
				if pass == 0 && maxPer > 0 && code >= 0 && count[code] >= maxPer {
					continue
				}
				rel := float32(1)
				if hi > lo {
					rel = float32((float64(in.Scores[c]) - float64(lo)) / (float64(hi) - float64(lo)))
				}
				v := lambda * rel
				if len(picked) > 0 {
					ms := float32(math.Inf(-1))
					for _, p := range picked {
						ms = max(ms, sim(p, c))
					}
					v -= (1 - lambda) * ms
				}
				if best < 0 || v > bestV || v == bestV && c < best {
					best, bestV = c, v
				}
			}
		}
		picked = append(picked, best)
		count[in.Attributes[best]]++
	}
	return picked
}

func TestMMRMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	iters := 200
	if testing.Short() {
		iters = 40
	}
	for iter := range iters {
		n := 1 + rng.IntN(150)
		dim := 1 + rng.IntN(12)
		in := randomInput(rng, n, dim)
		k := rng.IntN(25)
		lambda := float32(rng.IntN(11)) / 10
		pool := []int{0, 10, 40, 1000}[rng.IntN(4)]
		maxPer := rng.IntN(3)
		p := Params{Lambda: &lambda, Pool: pool, Attributes: []string{"cat"}}
		if maxPer > 0 {
			p.Attribute, p.MaxPerValue = "cat", maxPer
		}
		d, err := NewFromParams(p, NativeKernels)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]int32, k)
		m, err := d.Order(in, k, got)
		if err != nil {
			t.Fatal(err)
		}
		want := refMMR(in, k, lambda, pool, maxPer)
		if !slices.Equal(got[:m], want) {
			t.Fatalf("iter %d (n %d dim %d k %d λ %v pool %d cap %d):\ngot  %v\nwant %v", iter, n, dim, k, lambda, pool, maxPer, got[:m], want)
		}
	}
}

func TestOrderIsPermutationPrefix(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	for _, mode := range []string{"mmr", "round_robin"} {
		d, err := New([]byte(`{"mode":"`+mode+`","attribute":"cat","max_per_value":2,"attributes":["cat"]}`), NativeKernels)
		if err != nil {
			t.Fatal(err)
		}
		for range 50 {
			n := rng.IntN(300)
			in := randomInput(rng, n, 8)
			k := rng.IntN(n + 5)
			out := make([]int32, k)
			m, err := d.Order(in, k, out)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[int32]bool{}
			for _, o := range out[:m] {
				if o < 0 || int(o) >= n || seen[o] {
					t.Fatalf("%s: order %v is not a permutation prefix of %d", mode, out[:m], n)
				}
				seen[o] = true
			}
			if m != min(k, n) {
				t.Fatalf("%s: m %d for k %d n %d", mode, m, k, n)
			}
		}
	}
}

// GoldenCase is one case of testdata/golden.json: params, the ABI inputs, k and the expected
// order. The Wasm golden test runs the same cases through the built plugin.
type GoldenCase struct {
	Name       string          `json:"name"`
	Params     json.RawMessage `json:"params"`
	K          int             `json:"k"`
	Dim        int             `json:"dim"`
	Embeddings []float32       `json:"embeddings"`
	Attributes []int32         `json:"attributes"`
	Scores     []float32       `json:"scores"`
	Want       []int32         `json:"want"`
}

func goldenCases() []GoldenCase {
	rng := rand.New(rand.NewPCG(12, 0))
	gen := func(name, params string, n, dim, k int) GoldenCase {
		in := randomInput(rng, n, dim)
		cats := in.Attributes
		brands := make([]int32, n)
		for i := range brands {
			brands[i] = int32(rng.IntN(30))
		}
		return GoldenCase{Name: name, Params: json.RawMessage(params), K: k, Dim: dim, Embeddings: in.Embeddings,
			Attributes: append(brands, cats...), Scores: in.Scores}
	}
	const attrs = `"attributes":["brand","category"]`
	return []GoldenCase{
		gen("mmr", `{"lambda":0.6,`+attrs+`}`, 150, 16, 20),
		gen("mmr with category cap", `{"lambda":0.8,"attribute":"category","max_per_value":2,`+attrs+`}`, 120, 8, 20),
		gen("mmr pool 40", `{"lambda":0.3,"pool":40,`+attrs+`}`, 200, 32, 10),
		gen("round robin by brand", `{"mode":"round_robin","attribute":"brand",`+attrs+`}`, 60, 4, 25),
		gen("round robin two rounds", `{"mode":"round_robin","attribute":"category","max_per_value":2,`+attrs+`}`, 60, 4, 30),
	}
}

func orderCase(t *testing.T, c *GoldenCase) []int32 {
	t.Helper()
	d, err := New(effective(t, c.Params), NativeKernels)
	if err != nil {
		t.Fatalf("%s: %v", c.Name, err)
	}
	out := make([]int32, c.K)
	m, err := d.Order(Input{Embeddings: c.Embeddings, Dim: c.Dim, Attributes: c.Attributes, Scores: c.Scores}, c.K, out)
	if err != nil {
		t.Fatalf("%s: %v", c.Name, err)
	}
	return out[:m]
}

// TestGolden compares against testdata/golden.json; go test -update rewrites it.
func TestGolden(t *testing.T) {
	path := filepath.Join("testdata", "golden.json")
	if updating() {
		cases := goldenCases()
		var b bytes.Buffer
		b.WriteString("[\n")
		for i := range cases {
			cases[i].Want = orderCase(t, &cases[i])
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
		if got := orderCase(t, c); !slices.Equal(got, c.Want) {
			t.Errorf("%s: got %v, want %v", c.Name, got, c.Want)
		}
	}
}

func FuzzNew(f *testing.F) {
	f.Add([]byte(`{"lambda":0.5,"pool":3,"attribute":"c","max_per_value":1,"attributes":["c"]}`))
	f.Add([]byte(`{"mode":"round_robin","attribute":"c","max_per_value":2,"attributes":["x","c"]}`))
	f.Add([]byte(`{"lambda":null,"features":["a"]}`))
	f.Fuzz(func(t *testing.T, params []byte) {
		d, err := New(params, NativeKernels)
		if err != nil {
			if !errors.Is(err, ErrParams) {
				t.Fatalf("error %v does not wrap ErrParams", err)
			}
			return
		}
		n := 7
		in := Input{Embeddings: make([]float32, 2*n), Dim: 2, Attributes: make([]int32, d.nattr*n), Scores: make([]float32, n)}
		for i := range in.Embeddings {
			in.Embeddings[i] = float32(i%3) - 1
		}
		for i := range in.Attributes {
			in.Attributes[i] = int32(i%4) - 1
		}
		for i := range in.Scores {
			in.Scores[i] = float32(i % 3)
		}
		out := make([]int32, 5)
		m, err := d.Order(in, 5, out)
		if err != nil || m != 5 {
			t.Fatalf("m %d err %v", m, err)
		}
		seen := map[int32]bool{}
		for _, o := range out {
			if o < 0 || int(o) >= n || seen[o] {
				t.Fatalf("order %v", out)
			}
			seen[o] = true
		}
	})
}

// TestTopP checks the radix select against sorting, on scores with many ties, negatives,
// ±0, ±Inf and NaN.
func TestTopP(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	specials := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)),
		float32(math.NaN()), math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32}
	d := &Diversifier{}
	for iter := range 500 {
		n := 1 + rng.IntN(300)
		scores := make([]float32, n)
		for i := range scores {
			switch rng.IntN(4) {
			case 0:
				scores[i] = specials[rng.IntN(len(specials))]
			case 1:
				scores[i] = float32(rng.IntN(5)) - 2
			default:
				scores[i] = float32(rng.NormFloat64() * 100)
			}
		}
		p := 1 + rng.IntN(n)
		d.grow(p, 0)
		d.topP(scores, p)
		idx := make([]int32, n)
		for i := range idx {
			idx[i] = int32(i)
		}
		slices.SortStableFunc(idx, func(a, b int32) int {
			if better(scores, a, b) {
				return -1
			}
			if better(scores, b, a) {
				return 1
			}
			return 0
		})
		want := slices.Clone(idx[:p])
		slices.Sort(want)
		if got := d.cand[:p]; !slices.Equal(got, want) {
			t.Fatalf("iter %d n %d p %d: got %v, want %v (scores %v)", iter, n, p, got, want, scores)
		}
	}
}

// TestOrderRepeats checks that one Diversifier gives the same order call after call and
// across requests of different sizes: its scratch must be clean between calls.
func TestOrderRepeats(t *testing.T) {
	cases := goldenCases()
	ds := make([]*Diversifier, len(cases))
	want := make([][]int32, len(cases))
	for i := range cases {
		d, err := New(effective(t, cases[i].Params), NativeKernels)
		if err != nil {
			t.Fatal(err)
		}
		ds[i], want[i] = d, orderCase(t, &cases[i])
	}
	for round := range 3 {
		for i, c := range cases {
			out := make([]int32, c.K)
			m, err := ds[i].Order(Input{Embeddings: c.Embeddings, Dim: c.Dim, Attributes: c.Attributes, Scores: c.Scores}, c.K, out)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(out[:m], want[i]) {
				t.Fatalf("round %d %s: %v, want %v", round, c.Name, out[:m], want[i])
			}
		}
		// Interleave other requests on the same Diversifiers.
		for i, c := range cases {
			j := (i + 1) % len(cases)
			_, _ = ds[i].Order(Input{Embeddings: cases[j].Embeddings, Dim: cases[j].Dim, Attributes: cases[j].Attributes,
				Scores: cases[j].Scores}, c.K, make([]int32, c.K))
		}
	}
}
