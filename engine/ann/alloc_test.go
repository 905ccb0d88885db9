//go:build !race

package ann

import "testing"

// TestSearchAllocs proves that a search with a dst of enough capacity allocates nothing, for
// every index, with and without a filter.
func TestSearchAllocs(t *testing.T) {
	base, queries := clustered(3000, 10, 32, 30, 0.5, 11)
	f := FilterFunc(func(id uint32) bool { return id%3 != 0 })
	for name, idx := range map[string]Index{
		"hnsw": NewHNSW(32, Cosine, HNSWConfig{M: 8, EfConstruction: 64}),
		"flat": NewFlat(32, Cosine),
		"ivf":  NewIVF(32, Cosine, IVFConfig{TrainSize: 1000}),
	} {
		fill(t, idx, base)
		dst := make([]Result, 0, 100)
		for _, filt := range []Filter{nil, f} {
			i := 0
			idx.Search(queries[0], 100, filt, dst) // warm the pool
			allocs := testing.AllocsPerRun(100, func() {
				dst = idx.Search(queries[i%len(queries)], 100, filt, dst)
				i++
			})
			if allocs != 0 {
				t.Errorf("%s (filter %v): %.1f allocations per search, want 0", name, filt != nil, allocs)
			}
		}
	}
}
