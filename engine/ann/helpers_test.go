package ann

import (
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/podium-rank/podium/engine/demo"
)

// rows splits a flat row-major slice into dim-long rows that share its memory.
func rows(flat []float32, dim int) [][]float32 {
	out := make([][]float32, len(flat)/dim)
	for i := range out {
		out[i] = flat[i*dim : (i+1)*dim : (i+1)*dim]
	}
	return out
}

// clustered returns n base vectors and nq query vectors drawn from the same clusters.
func clustered(n, nq, dim, clusters int, spread float64, seed uint64) (base, queries [][]float32) {
	flat, _ := demo.ClusteredVectors(n+nq, dim, clusters, spread, seed)
	all := rows(flat, dim)
	return all[:n], all[n:]
}

func fill(t testing.TB, idx Index, base [][]float32) {
	t.Helper()
	for i, v := range base {
		if err := idx.Upsert(uint32(i), v); err != nil {
			t.Fatalf("Upsert(%d): %v", i, err)
		}
	}
}

// recallAt returns the mean fraction of the exact top k (from truth) that idx returns.
func recallAt(t testing.TB, idx, truth Index, queries [][]float32, k int, f Filter) float64 {
	t.Helper()
	var hit, total int
	var got, want []Result
	for _, q := range queries {
		want = truth.Search(q, k, f, want)
		got = idx.Search(q, k, f, got)
		set := make(map[uint32]bool, len(want))
		for _, r := range want {
			set[r.ID] = true
		}
		for _, r := range got {
			if set[r.ID] {
				hit++
			}
		}
		total += len(want)
	}
	if total == 0 {
		return 1
	}
	return float64(hit) / float64(total)
}

// checkSorted fails unless res is sorted by Score descending with distinct ids.
func checkSorted(t testing.TB, res []Result) {
	t.Helper()
	seen := make(map[uint32]bool, len(res))
	for i, r := range res {
		if seen[r.ID] {
			t.Fatalf("id %d returned twice", r.ID)
		}
		seen[r.ID] = true
		if i > 0 && res[i-1].Score < r.Score {
			t.Fatalf("results not sorted at %d: %v then %v", i, res[i-1], r)
		}
	}
}

func randVec(rng *rand.Rand, dim int) []float32 {
	v := make([]float32, dim)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

// fillParallel upserts base[i] under id i from workers goroutines.
func fillParallel(tb testing.TB, idx Index, base [][]float32, workers int) {
	tb.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(base); i += workers {
				if err := idx.Upsert(uint32(i), base[i]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
}
