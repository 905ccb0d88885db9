package twotower

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// benchInput is 1000 candidates with 64-d embeddings and 32 feature columns, the first
// being popularity.
func benchInput(n, dim int) (Input, []string) {
	rng := rand.New(rand.NewPCG(5, 6))
	in := Input{Query: make([]float32, dim), Embeddings: make([]float32, n*dim),
		Features: make([]float32, 32*n), Scores: make([]float32, n)}
	for i := range in.Query {
		in.Query[i] = float32(rng.NormFloat64())
	}
	for i := range in.Embeddings {
		in.Embeddings[i] = float32(rng.NormFloat64())
	}
	for i := range in.Features {
		in.Features[i] = float32(rng.ExpFloat64())
	}
	cols := []string{"popularity"}
	for j := 1; j < 32; j++ {
		cols = append(cols, "f"+strconv.Itoa(j))
	}
	return in, cols
}

// naiveDot is the one-accumulator loop, the baseline for the kernel's four partial sums.
func naiveDot(q, rows, out []float32) {
	dim := len(q)
	for i := range out {
		var s float32
		for j, v := range rows[i*dim : (i+1)*dim] {
			s += q[j] * v
		}
		out[i] = s
	}
}

// BenchmarkRank scores 1000 candidates × 64-d embeddings with 32 feature columns.
func BenchmarkRank(b *testing.B) {
	const n, dim = 1000, 64
	in, cols := benchInput(n, dim)
	out := make([]float32, n)
	colsJSON := `"features":["` + cols[0]
	for _, c := range cols[1:] {
		colsJSON += `","` + c
	}
	colsJSON += `"]`
	for _, tc := range []struct {
		name, params string
		k            Kernels
	}{
		{"dot", `{"bias_feature":"popularity","bias_weight":0.1,` + colsJSON + `}`, NativeKernels},
		{"dot-log1p", `{"bias_feature":"popularity","bias_weight":0.1,"bias_transform":"log1p",` + colsJSON + `}`, NativeKernels},
		{"cosine", `{"similarity":"cosine","bias_feature":"popularity","bias_weight":0.1,` + colsJSON + `}`, NativeKernels},
		{"dot-naive-loop", `{"bias_feature":"popularity","bias_weight":0.1,` + colsJSON + `}`, Kernels{Dot: naiveDot}},
	} {
		r, err := New([]byte(tc.params), tc.k)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(4 * len(in.Embeddings)))
			for b.Loop() {
				if err := r.Rank(in, out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
