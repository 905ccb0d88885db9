// Package demo generates Podium's built-in synthetic data set: a catalog of items with
// clustered embeddings, categories, brands, prices and long-tailed popularity, and users
// whose tastes are mixtures of item clusters. Tests, benchmarks and `engine --demo` share it.
package demo

import (
	"math"
	"math/rand/v2"
)

// ClusteredVectors returns n vectors of dimension dim laid out row after row in one flat
// slice, drawn around clusters Gaussian centres with per-coordinate standard deviation
// spread (centres have unit variance per coordinate), and the cluster of each vector.
// The output depends only on the arguments.
func ClusteredVectors(n, dim, clusters int, spread float64, seed uint64) (vecs []float32, cluster []int32) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	centres := make([]float64, clusters*dim)
	for i := range centres {
		centres[i] = rng.NormFloat64()
	}
	vecs = make([]float32, n*dim)
	cluster = make([]int32, n)
	for i := 0; i < n; i++ {
		c := rng.IntN(clusters)
		cluster[i] = int32(c)
		row := vecs[i*dim : (i+1)*dim]
		ctr := centres[c*dim : (c+1)*dim]
		for j := range row {
			row[j] = float32(ctr[j] + spread*rng.NormFloat64())
		}
	}
	return vecs, cluster
}

// Normalize scales each dim-long row of vecs to unit L2 norm in place. Zero rows stay zero.
func Normalize(vecs []float32, dim int) {
	for i := 0; i+dim <= len(vecs); i += dim {
		row := vecs[i : i+dim]
		var s float64
		for _, x := range row {
			s += float64(x) * float64(x)
		}
		if s == 0 {
			continue
		}
		inv := float32(1 / math.Sqrt(s))
		for j := range row {
			row[j] *= inv
		}
	}
}
