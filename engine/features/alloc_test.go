//go:build !race

package features

import (
	"math/rand/v2"
	"testing"
)

// TestItemStoreGatherAllocs proves the request path allocates nothing: gathering 1000
// random items × 32 features into a dst with enough capacity.
func TestItemStoreGatherAllocs(t *testing.T) {
	const items, nItems, nCols = 20000, 1000, 32
	s := NewItemStore(64, 0)
	cols := make([]int, nCols)
	for f := range cols {
		cols[f] = f * 2 // spread over all four groups
	}
	vals := make([]float32, nCols)
	for id := uint32(0); id < items; id++ {
		for f := range vals {
			vals[f] = float32(id) + float32(f)
		}
		if err := s.SetRow(id, cols, vals); err != nil {
			t.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	ids := make([]uint32, nItems)
	for i := range ids {
		ids[i] = uint32(rng.IntN(items))
	}
	dst := make([]float32, 0, nItems*nCols)
	allocs := testing.AllocsPerRun(100, func() {
		dst = s.Gather(ids, cols, dst[:0])
	})
	if allocs != 0 {
		t.Fatalf("Gather: %v allocations per run, want 0", allocs)
	}
	if got, want := dst[5*nItems+7], float32(ids[7])+5; got != want {
		t.Fatalf("Gather result: got %v, want %v", got, want)
	}
}
