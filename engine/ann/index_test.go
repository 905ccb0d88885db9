package ann

import (
	"errors"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

// newIndexes returns one index of each kind, for tests every Index must pass.
func newIndexes(dim int, m Metric) map[string]Index {
	return map[string]Index{
		"hnsw": NewHNSW(dim, m, HNSWConfig{M: 8, EfConstruction: 64}),
		"flat": NewFlat(dim, m),
		// TrainSize 1000 makes the larger tests train it mid-fill.
		"ivf": NewIVF(dim, m, IVFConfig{TrainSize: 1000, Nprobe: 4}),
	}
}

func TestBadInput(t *testing.T) {
	const dim = 8
	good := []float32{1, 2, 3, 4, 5, 6, 7, 8}
	nan := append([]float32(nil), good...)
	nan[3] = float32(math.NaN())
	inf := append([]float32(nil), good...)
	inf[7] = float32(math.Inf(-1))
	cases := []struct {
		name   string
		metric Metric
		id     uint32
		vec    []float32
		want   error
	}{
		{"short", Cosine, 1, good[:7], ErrDim},
		{"long", Dot, 1, append(good, 1), ErrDim},
		{"nil", Cosine, 1, nil, ErrDim},
		{"nan", Cosine, 1, nan, ErrNotFinite},
		{"nan dot", Dot, 1, nan, ErrNotFinite},
		{"inf", Cosine, 1, inf, ErrNotFinite},
		{"zero cosine", Cosine, 1, make([]float32, dim), ErrZero},
		{"id too large", Cosine, MaxID + 1, good, ErrID},
	}
	for _, c := range cases {
		for name, idx := range newIndexes(dim, c.metric) {
			err := idx.Upsert(c.id, c.vec)
			if !errors.Is(err, c.want) {
				t.Errorf("%s %s: Upsert error = %v, want %v", name, c.name, err, c.want)
			}
			if idx.Len() != 0 {
				t.Errorf("%s %s: Len = %d after a refused Upsert", name, c.name, idx.Len())
			}
			if got := idx.Search(good, 5, nil, nil); len(got) != 0 {
				t.Errorf("%s %s: Search found %v after a refused Upsert", name, c.name, got)
			}
		}
	}
	// A zero vector is a valid vector under Dot.
	for name, idx := range newIndexes(dim, Dot) {
		if err := idx.Upsert(3, make([]float32, dim)); err != nil {
			t.Errorf("%s: zero vector under Dot: %v", name, err)
		}
		if got := idx.Search(good, 1, nil, nil); len(got) != 1 || got[0].ID != 3 || got[0].Score != 0 {
			t.Errorf("%s: Search = %v, want id 3 with score 0", name, got)
		}
	}
	// Bad queries return nothing.
	for name, idx := range newIndexes(dim, Cosine) {
		if err := idx.Upsert(0, good); err != nil {
			t.Fatal(err)
		}
		for _, q := range [][]float32{good[:3], nan, inf, make([]float32, dim)} {
			dst := make([]Result, 3, 10)
			if got := idx.Search(q, 5, nil, dst); len(got) != 0 {
				t.Errorf("%s: Search(%v) = %v, want none", name, q, got)
			}
		}
		if got := idx.Search(good, 0, nil, nil); len(got) != 0 {
			t.Errorf("%s: Search with k=0 = %v", name, got)
		}
	}
}

func TestCosineScores(t *testing.T) {
	for name, idx := range newIndexes(2, Cosine) {
		mustUpsert(t, idx, 0, []float32{3, 4})
		mustUpsert(t, idx, 1, []float32{-2, 0})
		got := idx.Search([]float32{30, 40}, 2, nil, nil)
		if len(got) != 2 || got[0].ID != 0 || math.Abs(float64(got[0].Score)-1) > 1e-6 ||
			got[1].ID != 1 || math.Abs(float64(got[1].Score)+0.6) > 1e-6 {
			t.Errorf("%s: Search = %v, want [{0 1} {1 -0.6}]", name, got)
		}
	}
	for name, idx := range newIndexes(2, Dot) {
		mustUpsert(t, idx, 0, []float32{3, 4})
		mustUpsert(t, idx, 1, []float32{10, 0})
		got := idx.Search([]float32{1, 1}, 2, nil, nil)
		if len(got) != 2 || got[0].ID != 1 || got[0].Score != 10 || got[1].ID != 0 || got[1].Score != 7 {
			t.Errorf("%s: Search = %v, want [{1 10} {0 7}]", name, got)
		}
	}
}

func mustUpsert(t testing.TB, idx Index, id uint32, v []float32) {
	t.Helper()
	if err := idx.Upsert(id, v); err != nil {
		t.Fatalf("Upsert(%d): %v", id, err)
	}
}

// TestSearchDst checks that Search appends to dst[:0] and reuses its memory.
func TestSearchDst(t *testing.T) {
	base, queries := clustered(500, 1, 16, 10, 0.5, 2)
	for name, idx := range newIndexes(16, Cosine) {
		fill(t, idx, base)
		dst := make([]Result, 7, 32)
		got := idx.Search(queries[0], 10, nil, dst)
		if len(got) != 10 || &got[0] != &dst[:1][0] {
			t.Errorf("%s: Search did not reuse dst (len %d)", name, len(got))
		}
		checkSorted(t, got)
		if got := idx.Search(queries[0], 1000, nil, nil); len(got) != 500 {
			t.Errorf("%s: k above Len returned %d, want 500", name, len(got))
		}
	}
}

func TestFilter(t *testing.T) {
	const dim = 16
	n := 3000
	if raceEnabled {
		n = 1200
	}
	base, queries := clustered(n, 20, dim, 30, 0.5, 3)
	for name, idx := range newIndexes(dim, Cosine) {
		fill(t, idx, base)
		truth := NewFlat(dim, Cosine)
		fill(t, truth, base)
		// From most to least selective, including filters that allow fewer than k ids.
		for _, mod := range []int{2, 7, 50, 400, 1500, 5000} {
			f := FilterFunc(func(id uint32) bool { return id%uint32(mod) == 0 })
			allowed := (n + mod - 1) / mod
			const k = 10
			var calls atomic.Int64
			counting := FilterFunc(func(id uint32) bool { calls.Add(1); return f(id) })
			for _, q := range queries {
				got := idx.Search(q, k, counting, nil)
				if len(got) != min(k, allowed) {
					t.Fatalf("%s mod %d: got %d results, want %d", name, mod, len(got), min(k, allowed))
				}
				checkSorted(t, got)
				for _, r := range got {
					if !f(r.ID) {
						t.Fatalf("%s mod %d: disallowed id %d returned", name, mod, r.ID)
					}
				}
			}
			if calls.Load() == 0 {
				t.Fatalf("%s mod %d: filter never called", name, mod)
			}
			r := recallAt(t, idx, truth, queries, k, f)
			t.Logf("%s filter 1/%d recall@%d = %.3f", name, mod, k, r)
			if r < 0.9 {
				t.Errorf("%s filter 1/%d: recall@%d = %.3f, want >= 0.9", name, mod, k, r)
			}
		}
		// A filter that rejects everything.
		if got := idx.Search(queries[0], 5, FilterFunc(func(uint32) bool { return false }), nil); len(got) != 0 {
			t.Errorf("%s: reject-all filter returned %v", name, got)
		}
	}
}

// TestFilterGraph checks the filtered graph search itself: on an index this small, SearchEf
// would otherwise scan for all but the loosest filters.
func TestFilterGraph(t *testing.T) {
	const dim, k = 16, 10
	n := 3000
	if raceEnabled {
		n = 1200
	}
	base, queries := clustered(n, 20, dim, 30, 0.5, 3)
	h := NewHNSW(dim, Cosine, HNSWConfig{M: 8, EfConstruction: 64})
	h.noEstimate = true
	truth := NewFlat(dim, Cosine)
	fill(t, h, base)
	fill(t, truth, base)
	for _, mod := range []int{1, 2, 5, 20, 200, 5000} {
		var calls atomic.Int64
		f := FilterFunc(func(id uint32) bool { calls.Add(1); return id%uint32(mod) == 0 })
		allowed := (n + mod - 1) / mod
		for _, q := range queries {
			got := h.Search(q, k, f, nil)
			if len(got) != min(k, allowed) {
				t.Fatalf("mod %d: got %d results, want %d", mod, len(got), min(k, allowed))
			}
			for _, r := range got {
				if r.ID%uint32(mod) != 0 {
					t.Fatalf("mod %d: disallowed id %d returned", mod, r.ID)
				}
			}
		}
		if calls.Load() == 0 {
			t.Fatalf("mod %d: filter never called", mod)
		}
		r := recallAt(t, h, truth, queries, k, f)
		t.Logf("graph filter 1/%d recall@%d = %.3f", mod, k, r)
		if r < 0.9 {
			t.Errorf("graph filter 1/%d: recall@%d = %.3f, want >= 0.9", mod, k, r)
		}
	}
}

func TestDeleteUpsert(t *testing.T) {
	const n, dim = 2000, 16
	base, queries := clustered(n, 30, dim, 20, 0.5, 4)
	for name, idx := range newIndexes(dim, Cosine) {
		truth := NewFlat(dim, Cosine)
		fill(t, idx, base)
		fill(t, truth, base)
		idx.Delete(n + 100) // absent: no-op
		idx.Delete(1 << 30)
		if idx.Len() != n {
			t.Fatalf("%s: Len = %d after deleting absent ids", name, idx.Len())
		}
		// Delete every third id.
		for i := 0; i < n; i += 3 {
			idx.Delete(uint32(i))
			truth.Delete(uint32(i))
		}
		idx.Delete(0) // twice
		wantLen := n - (n+2)/3
		if idx.Len() != wantLen {
			t.Fatalf("%s: Len = %d, want %d", name, idx.Len(), wantLen)
		}
		for _, q := range queries {
			for _, r := range idx.Search(q, 50, nil, nil) {
				if r.ID%3 == 0 {
					t.Fatalf("%s: deleted id %d returned", name, r.ID)
				}
			}
		}
		// Searching exactly for a deleted vector must not return it.
		if got := idx.Search(base[3], 1, nil, nil); len(got) != 1 || got[0].ID == 3 {
			t.Fatalf("%s: search for deleted vector 3 = %v", name, got)
		}
		if r := recallAt(t, idx, truth, queries, 10, nil); r < 0.95 {
			t.Errorf("%s: recall@10 after deletes = %.3f", name, r)
		}
		// Replace: move ids 1..99 (not multiples of 3) onto other ids' vectors, and bring back
		// some deleted ids with new vectors.
		rng := rand.New(rand.NewPCG(5, 5))
		for i := 1; i < 100; i++ {
			v := base[rng.IntN(n)]
			mustUpsert(t, idx, uint32(i), v)
			mustUpsert(t, truth, uint32(i), v)
		}
		if idx.Len() != truth.Len() {
			t.Fatalf("%s: Len = %d, want %d", name, idx.Len(), truth.Len())
		}
		for i := 1; i < 100; i++ {
			// The replaced vector is found under its id with score 1.
			got := idx.Search(base[0], 1, FilterFunc(func(id uint32) bool { return id == uint32(i) }), nil)
			want := truth.Search(base[0], 1, FilterFunc(func(id uint32) bool { return id == uint32(i) }), nil)
			if len(got) != 1 || got[0] != want[0] {
				t.Fatalf("%s: id %d after replace: got %v, want %v", name, i, got, want)
			}
		}
		if r := recallAt(t, idx, truth, queries, 10, nil); r < 0.95 {
			t.Errorf("%s: recall@10 after replaces = %.3f", name, r)
		}
		// Delete everything, then insert again.
		for i := 0; i < n; i++ {
			idx.Delete(uint32(i))
		}
		if idx.Len() != 0 || len(idx.Search(queries[0], 5, nil, nil)) != 0 {
			t.Fatalf("%s: index not empty after deleting all", name)
		}
		mustUpsert(t, idx, 7, base[7])
		mustUpsert(t, idx, 5000, base[8])
		got := idx.Search(base[8], 5, nil, nil)
		if len(got) != 2 || got[0].ID != 5000 || got[1].ID != 7 {
			t.Fatalf("%s: after re-insert Search = %v", name, got)
		}
	}
}

// TestHammer runs searches, upserts and deletes together; run it with -race.
func TestHammer(t *testing.T) {
	const dim = 16
	n := 3000
	if raceEnabled {
		n = 1500
	}
	base, queries := clustered(n, 50, dim, 30, 0.5, 6)
	for name, idx := range newIndexes(dim, Cosine) {
		t.Run(name, func(t *testing.T) {
			fill(t, idx, base[:n/2])
			var wg, writers sync.WaitGroup
			var stop atomic.Bool
			var searches atomic.Int64
			for g := 0; g < 4; g++ {
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					var dst []Result
					f := FilterFunc(func(id uint32) bool { return id%2 == 0 })
					for i := 0; !stop.Load() || i < 20; i++ {
						q := queries[(g*7+i)%len(queries)]
						var ff Filter
						if i%3 == 0 {
							ff = f
						}
						dst = idx.Search(q, 20, ff, dst)
						for j, r := range dst {
							if r.ID >= uint32(n) || (ff != nil && r.ID%2 != 0) || (j > 0 && dst[j-1].Score < r.Score) {
								t.Errorf("bad result %v in %v", r, dst)
								return
							}
						}
						searches.Add(1)
					}
				}(g)
			}
			for w := 0; w < 2; w++ {
				writers.Add(1)
				go func(w int) {
					defer writers.Done()
					rng := rand.New(rand.NewPCG(uint64(w), 9))
					ops := 500
					if raceEnabled {
						ops = 200
					}
					for i := 0; i < ops; i++ {
						id := uint32(rng.IntN(n))
						switch rng.IntN(4) {
						case 0:
							idx.Delete(id)
						default:
							if err := idx.Upsert(id, base[rng.IntN(n)]); err != nil {
								t.Error(err)
								return
							}
						}
					}
				}(w)
			}
			writers.Wait()
			stop.Store(true)
			wg.Wait()
			if searches.Load() == 0 {
				t.Fatal("no searches ran")
			}
			// The index is still consistent: asking for every id returns exactly the live ones.
			all := idx.Search(base[0], n, nil, nil)
			checkSorted(t, all)
			if len(all) != idx.Len() {
				t.Fatalf("Search for all returned %d ids, Len = %d", len(all), idx.Len())
			}
		})
	}
}

func TestPreferScan(t *testing.T) {
	base, _ := clustered(3000, 0, 8, 10, 0.5, 3)
	h := NewHNSW(8, Cosine, HNSWConfig{M: 8, EfConstruction: 32})
	fill(t, h, base)
	every := func(m uint32) Filter { return FilterFunc(func(id uint32) bool { return id%m == 0 }) }
	for _, c := range []struct {
		f    Filter
		ef   int
		want bool
	}{
		{every(1), 1, false},   // 24 < 3000 + 375
		{every(2), 10, false},  // 480 < 1500 + 375
		{every(200), 1, true},  // 4800 > 15 + 375
		{every(5000), 1, true}, // only id 0 allowed: the sample finds none
		{every(1), 200, true},  // 4800 > 3375: a beam this wide costs more than a scan
	} {
		if got := h.preferScan(c.f, c.ef, h.Len()); got != c.want {
			t.Errorf("preferScan(ef %d) = %v, want %v", c.ef, got, c.want)
		}
	}
}
