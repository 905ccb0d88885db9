package mmr

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// naiveMMR is the textbook loop the incremental max-similarity array replaces: at every
// step it recomputes each candidate's similarity to everything picked, O(k²·pool·dim). It
// runs on a prepared Diversifier's pool.
func naiveMMR(d *Diversifier, order []int32) {
	np, dim := d.np, d.dim
	picked := make([]int, 0, len(order))
	done := make([]bool, np)
	for t := range order {
		best, bestV := -1, float32(0)
		for i := range np {
			if done[i] {
				continue
			}
			v := d.lambda * d.rel[i]
			if t > 0 {
				ms := float32(-2)
				for _, p := range picked {
					ms = max(ms, dot(d.emb[p*dim:(p+1)*dim], d.emb[i*dim:(i+1)*dim])*d.inv[p]*d.inv[i])
				}
				v -= (1 - d.lambda) * ms
			}
			if best < 0 || v > bestV {
				best, bestV = i, v
			}
		}
		done[best] = true
		picked = append(picked, best)
		order[t] = d.cand[best]
	}
}

// BenchmarkOrder picks the top 20 of 1000 candidates with 64-d embeddings (as the demo
// catalog's), for pools of 100 (the default for k = 20), 200 and all 1000, beside the naive
// MMR loop and round-robin.
func BenchmarkOrder(b *testing.B) {
	const n, dim, k = 1000, 64, 20
	rng := rand.New(rand.NewPCG(1, 2))
	in := randomInput(rng, n, dim)
	in.Attributes = append(in.Attributes, in.Attributes...) // brand, category
	out := make([]int32, k)
	const attrs = `"attributes":["brand","category"]`
	for _, tc := range []struct{ name, params string }{
		{"mmr-pool100", `{` + attrs + `}`},
		{"mmr-pool200", `{"pool":200,` + attrs + `}`},
		{"mmr-pool1000", `{"pool":1000,` + attrs + `}`},
		{"mmr-pool200-cap2", `{"pool":200,"attribute":"category","max_per_value":2,` + attrs + `}`},
		{"round-robin", `{"mode":"round_robin","attribute":"category",` + attrs + `}`},
	} {
		d, err := New([]byte(tc.params), NativeKernels)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := d.Order(in, k, out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, pool := range []int{100, 200} {
		d, err := New([]byte(`{"pool":`+strconv.Itoa(pool)+`,`+attrs+`}`), NativeKernels)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("naive-pool"+strconv.Itoa(pool), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				// The same preparation as Order, then the naive loop.
				d.grow(pool, dim)
				d.np, d.dim = pool, dim
				d.topP(in.Scores, pool)
				d.prepare(in, nil, pool)
				naiveMMR(d, out)
			}
		})
	}
}
