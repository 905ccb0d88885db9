package ann

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/podium-rank/podium/engine/demo"
)

// churn plans the turnover of a catalog: waves delete a share of the live ids at random and
// insert as many new vectors under new ids, as engine.Engine does (the catalog never reuses a
// dense id). A plan is replayed on several indexes, each by one goroutine, so each index sees
// the same operations in the same order.
type churn struct {
	vecs  [][]float32 // vecs[id]; ids are assigned in order
	n     int         // ids 0..n-1 are the initial catalog
	waves [][2][]uint32
	live  []uint32 // after the last wave
}

// planChurn plans waves that each delete share of the live ids, at random or (oldest) the
// longest-stored first.
func planChurn(vecs [][]float32, n, waves int, share float64, oldest bool, seed uint64) *churn {
	c := &churn{vecs: vecs, n: n}
	rng := rand.New(rand.NewPCG(seed, 77))
	live := make([]uint32, n)
	for i := range live {
		live[i] = uint32(i)
	}
	next := n
	for range waves {
		if !oldest {
			rng.Shuffle(len(live), func(i, j int) { live[i], live[j] = live[j], live[i] })
		}
		k := int(share * float64(len(live)))
		del := slices.Clone(live[:k])
		live = live[k:]
		var ins []uint32
		for range k {
			ins = append(ins, uint32(next))
			live = append(live, uint32(next))
			next++
		}
		c.waves = append(c.waves, [2][]uint32{del, ins})
	}
	c.live = live
	return c
}

// build fills idx with the initial catalog.
func (c *churn) build(tb testing.TB, idx Index) {
	tb.Helper()
	fill(tb, idx, c.vecs[:c.n])
}

// wave applies wave w to idx: its deletes, then its inserts.
func (c *churn) wave(tb testing.TB, idx Index, w int) {
	tb.Helper()
	for _, id := range c.waves[w][0] {
		idx.Delete(id)
	}
	for _, id := range c.waves[w][1] {
		mustUpsert(tb, idx, id, c.vecs[id])
	}
}

// parallel runs f(i) for each i < n in its own goroutine and waits.
func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(i)
		}()
	}
	wg.Wait()
}

// flat returns an exact index over the live ids after the last wave.
func (c *churn) flat(dim int) *Flat {
	f := NewFlat(dim, Cosine)
	for _, id := range c.live {
		if err := f.Upsert(id, c.vecs[id]); err != nil {
			panic(err)
		}
	}
	return f
}

// recallVisits returns recall@k of h at beam ef against truth and the mean number of vectors
// a search scores.
func recallVisits(h *HNSW, truth Index, queries [][]float32, k, ef int) (recall, visits float64) {
	var got, want [][]Result
	total := 0
	for _, q := range queries {
		r, v := h.searchEf(q, k, ef, nil, nil)
		got = append(got, r)
		want = append(want, truth.Search(q, k, nil, nil))
		total += v
	}
	return recallVs(got, want), float64(total) / float64(len(queries))
}

// TestCompactChurnRecall turns a 20k × 32 clustered catalog over in waves and checks that the
// compacted index keeps the recall of a fresh build of the same live set, that it beats the
// index that only collects tombstones, and that compaction frees the dead nodes' memory.
func TestCompactChurnRecall(t *testing.T) {
	if raceEnabled {
		t.Skip("slow under -race; TestCompactHammer covers the races")
	}
	const dim, waves, share = 32, 4, 0.5 // 2/3 of the ids ever stored end up deleted
	n, nq := 20_000, 300
	if testing.Short() {
		n, nq = 4000, 100
	}
	extra := int(float64(n) * share * waves)
	flat, _ := demo.ClusteredVectors(n+extra+nq, dim, n/100, demo.DefaultConfig().Spread, 5)
	all := rows(flat, dim)
	vecs, queries := all[:n+extra], all[n+extra:]

	c := planChurn(vecs, n, waves, share, false, 1)
	cfg := HNSWConfig{CompactAt: -1}
	keep := NewHNSW(dim, Cosine, cfg)    // tombstones only
	compact := NewHNSW(dim, Cosine, cfg) // Compact after every wave
	reclaimed := 0
	parallel(2, func(i int) {
		h := []*HNSW{keep, compact}[i]
		c.build(t, h)
		for w := range waves {
			c.wave(t, h, w)
			if h == compact {
				reclaimed += h.Compact()
			}
		}
	})
	fresh := NewHNSW(dim, Cosine, HNSWConfig{})
	for _, id := range c.live {
		mustUpsert(t, fresh, id, vecs[id])
	}
	truth := c.flat(dim)

	// Tombstones widen every search (they are scored and expanded, but do not fill the beam),
	// so at the same ef the tombstoned index scores more vectors and finds at least as much.
	// Compare recall at the same ef against the fresh build, and at the same work against
	// the tombstoned index.
	const k = 10
	rFresh, vFresh := recallVisits(fresh, truth, queries, k, k)
	rCompact, vCompact := recallVisits(compact, truth, queries, k, k)
	rKeep, vKeep := recallVisits(keep, truth, queries, k, k)
	t.Logf("ef %d: recall@10 / vectors scored: fresh %.4f / %.0f, churned and compacted %.4f / %.0f, churned with tombstones %.4f / %.0f",
		k, rFresh, vFresh, rCompact, vCompact, rKeep, vKeep)
	if rCompact < rFresh-0.01 {
		t.Errorf("recall@10 after compaction %.4f, want >= fresh build's %.4f - 0.01", rCompact, rFresh)
	}
	if vCompact > 0.6*vKeep {
		t.Errorf("compacted index scores %.0f vectors per search, tombstoned %.0f: want at most 60 %%", vCompact, vKeep)
	}
	// The widest beam of the compacted index that costs no more than the tombstoned index's
	// narrowest (ef = k) must find more.
	best := rCompact
	for _, ef := range []int{16, 24, 32, 48, 64, 96} {
		r, v := recallVisits(compact, truth, queries, k, ef)
		if v > vKeep {
			break
		}
		best = r
	}
	t.Logf("at <= %.0f vectors scored: compacted recall@10 %.4f, tombstoned %.4f", vKeep, best, rKeep)
	if best <= rKeep {
		t.Errorf("at the same work, compacted recall@10 %.4f is not above tombstoned %.4f", best, rKeep)
	}

	deleted := extra
	if st := keep.Stats(); st.Deleted != deleted || st.Reclaimed != 0 || st.Compactions != 0 {
		t.Errorf("tombstoned index Stats = %+v, want Deleted %d and no compactions", st, deleted)
	}
	st := compact.Stats()
	if st.Deleted != 0 || st.Live != n || st.Reclaimed != int64(deleted) || reclaimed != deleted || st.Compactions != waves {
		t.Errorf("compacted Stats = %+v (Compact returned %d in all), want Live %d, Deleted 0, Reclaimed %d, %d compactions",
			st, reclaimed, n, deleted, waves)
	}
	// Freed vector slots are reused: the arena holds the live set plus the last wave's
	// inserts (written while that wave's tombstones still held their slots).
	compact.vecs.mu.Lock()
	used := int(compact.vecs.next)
	compact.vecs.mu.Unlock()
	if want := n + int(share*float64(n)); used > want {
		t.Errorf("compacted arena used %d slots for %d live ids, want <= %d", used, n, want)
	}
	if sk := keep.Stats(); st.Bytes >= sk.Bytes {
		t.Errorf("compacted index holds %d bytes, the tombstoned one %d", st.Bytes, sk.Bytes)
	}
	live := make(map[uint32]bool, len(c.live))
	for _, id := range c.live {
		live[id] = true
	}
	for _, q := range queries[:50] {
		for _, r := range compact.Search(q, 50, nil, nil) {
			if !live[r.ID] {
				t.Fatalf("deleted id %d returned after compaction", r.ID)
			}
		}
	}
}

// scores returns every id idx holds with its score for q.
func scores(idx Index, q []float32) map[uint32]float32 {
	m := make(map[uint32]float32, idx.Len())
	for _, r := range idx.Search(q, max(idx.Len(), 1), nil, nil) {
		m[r.ID] = r.Score
	}
	return m
}

// TestCompactReclaims checks the bookkeeping on a small index: tombstones are freed, a chunk
// whose ids all left is dropped, freed slots are reused, reclaimed ids can be stored again,
// and searches (with and without a filter) return exactly what Flat returns. Deleting the
// oldest ids (the graph's hubs), 2/3 of the index, in one compaction is the regression for the
// repair's second hop (recall@10 was 0.89 with one).
func TestCompactReclaims(t *testing.T) {
	const dim = 8
	base, queries := clustered(2000, 20, dim, 10, 0.5, 21)
	h := NewHNSW(dim, Cosine, HNSWConfig{M: 6, EfConstruction: 32, CompactAt: -1})
	truth := NewFlat(dim, Cosine)
	// ids 0..999 in chunk 0, ids chunkSize..chunkSize+999 in chunk 1.
	id := func(j int) uint32 {
		if j < 1000 {
			return uint32(j)
		}
		return uint32(chunkSize + j - 1000)
	}
	for j := range 2000 {
		mustUpsert(t, h, id(j), base[j])
		mustUpsert(t, truth, id(j), base[j])
	}
	if h.Compact() != 0 {
		t.Fatal("Compact without tombstones reclaimed nodes")
	}
	before := h.Stats()
	// Empty chunk 0 and delete every third id of chunk 1.
	wantDead := 0
	for j := range 2000 {
		if j < 1000 || j%3 == 0 {
			h.Delete(id(j))
			truth.Delete(id(j))
			wantDead++
		}
	}
	if st := h.Stats(); st.Deleted != wantDead {
		t.Fatalf("Deleted = %d, want %d", st.Deleted, wantDead)
	}
	if got := h.Compact(); got != wantDead {
		t.Fatalf("Compact reclaimed %d, want %d", got, wantDead)
	}
	st := h.Stats()
	if st.Deleted != 0 || st.Live != truth.Len() || st.Reclaimed != int64(wantDead) || st.Compactions != 1 {
		t.Fatalf("Stats after Compact = %+v, want Live %d, Deleted 0, Reclaimed %d", st, truth.Len(), wantDead)
	}
	if (*h.dir.Load())[0] != nil || (*h.dir.Load())[1] == nil {
		t.Fatal("chunk 0 (all ids reclaimed) not freed, or chunk 1 freed")
	}
	// One chunk of per-id state plus the reclaimed nodes' upper-layer lists.
	if perChunk := int64(chunkSize) * int64(4+1+8+4*h.stride); before.Bytes-st.Bytes <= perChunk {
		t.Errorf("Stats.Bytes fell by %d, want more than one chunk's %d", before.Bytes-st.Bytes, perChunk)
	}
	check := func(stage string) {
		t.Helper()
		if r := recallAt(t, h, truth, queries, 10, nil); r < 0.95 {
			t.Errorf("%s: recall@10 = %.3f", stage, r)
		}
		all := h.Search(queries[0], 5000, nil, nil)
		want := truth.Search(queries[0], 5000, nil, nil)
		if len(all) != len(want) || len(all) != h.Len() {
			t.Fatalf("%s: Search for all returned %d ids, Flat %d, Len %d", stage, len(all), len(want), h.Len())
		}
		for i := range all {
			if all[i].ID != want[i].ID && all[i].Score != want[i].Score {
				t.Fatalf("%s: rank %d: %v, Flat %v", stage, i, all[i], want[i])
			}
		}
		live := scores(truth, queries[0])
		f := FilterFunc(func(id uint32) bool { return id%5 == 1 })
		got := h.Search(queries[1], 30, f, nil)
		exact := truth.Search(queries[1], 30, f, nil)
		if len(got) != len(exact) {
			t.Fatalf("%s: filtered search returned %d, Flat %d", stage, len(got), len(exact))
		}
		for _, r := range got {
			if r.ID%5 != 1 {
				t.Fatalf("%s: filtered search returned disallowed id %d", stage, r.ID)
			}
			if _, ok := live[r.ID]; !ok {
				t.Fatalf("%s: filtered search returned deleted id %d", stage, r.ID)
			}
		}
	}
	check("after Compact")

	// New ids reuse the freed slots; a reclaimed id in the freed chunk can be stored again.
	h.vecs.mu.Lock()
	used := h.vecs.next
	h.vecs.mu.Unlock()
	for j := range 1000 {
		nid := uint32(2*chunkSize + j)
		mustUpsert(t, h, nid, base[j])
		mustUpsert(t, truth, nid, base[j])
	}
	mustUpsert(t, h, 7, base[1500])
	mustUpsert(t, truth, 7, base[1500])
	h.vecs.mu.Lock()
	usedAfter := h.vecs.next
	h.vecs.mu.Unlock()
	if usedAfter != used {
		t.Errorf("arena grew from %d to %d slots while %d freed slots were available", used, usedAfter, wantDead)
	}
	if got := h.Search(base[1500], 1, FilterFunc(func(id uint32) bool { return id == 7 }), nil); len(got) != 1 || got[0].ID != 7 {
		t.Fatalf("re-stored id 7 not found: %v", got)
	}
	check("after re-inserting")
}

// TestCompactAuto checks the trigger: a Delete that takes the tombstones past CompactAt starts
// a background compaction; below it, or with CompactAt < 0, nothing runs.
func TestCompactAuto(t *testing.T) {
	const dim = 8
	base, _ := clustered(2000, 0, dim, 10, 0.5, 22)
	run := func(at float64, deletes int) Stats {
		h := NewHNSW(dim, Cosine, HNSWConfig{M: 6, EfConstruction: 32, CompactAt: at})
		fill(t, h, base)
		for i := range deletes {
			h.Delete(uint32(i))
		}
		h.bg.Wait()
		return h.Stats()
	}
	// Default 0.25: 500 of 2000 is not above it, 501 is.
	if st := run(0, 500); st.Compactions != 0 || st.Deleted != 500 {
		t.Errorf("500 of 2000 deleted, default CompactAt: Stats = %+v, want no compaction", st)
	}
	if st := run(0, 600); st.Compactions < 1 || st.Reclaimed < 501 || st.Live != 1400 {
		t.Errorf("600 of 2000 deleted, default CompactAt: Stats = %+v, want a compaction of >= 501", st)
	}
	if st := run(0.1, 300); st.Compactions < 1 || st.Reclaimed < 201 {
		t.Errorf("300 of 2000 deleted, CompactAt 0.1: Stats = %+v, want a compaction of >= 201", st)
	}
	if st := run(-1, 1500); st.Compactions != 0 || st.Deleted != 1500 {
		t.Errorf("CompactAt -1: Stats = %+v, want no compaction", st)
	}
}

// TestCompactHammer runs searches, upserts, deletes and compactions (explicit and automatic)
// together; run it with -race. Ids deleted before the start are never returned, and at the
// end the index holds exactly the writers' final state.
func TestCompactHammer(t *testing.T) {
	const dim = 16
	n, ops := 3000, 3000
	if raceEnabled {
		n, ops = 1200, 800
	}
	base, queries := clustered(n+300, 50, dim, 30, 0.5, 23)
	h := NewHNSW(dim, Cosine, HNSWConfig{M: 8, EfConstruction: 48, CompactAt: 0.1})
	// Ids n..n+299 are stored and deleted before the hammer and never stored again.
	for i := n; i < n+300; i++ {
		mustUpsert(t, h, uint32(i), base[i])
	}
	fill(t, h, base[:n/2])
	for i := n; i < n+300; i++ {
		h.Delete(uint32(i))
	}

	var searchers, writers sync.WaitGroup
	var stop atomic.Bool
	var searches, compactions atomic.Int64
	for g := range 3 {
		searchers.Add(1)
		go func() {
			defer searchers.Done()
			var dst []Result
			even := FilterFunc(func(id uint32) bool { return id%2 == 0 })
			for i := 0; !stop.Load() || i < 20; i++ {
				var f Filter
				if i%3 == 0 {
					f = even
				}
				dst = h.Search(queries[(g*7+i)%len(queries)], 20, f, dst)
				for j, r := range dst {
					if r.ID >= uint32(n) || (f != nil && r.ID%2 != 0) || (j > 0 && dst[j-1].Score < r.Score) {
						t.Errorf("bad result %v in %v", r, dst)
						return
					}
				}
				searches.Add(1)
			}
		}()
	}
	// Writer w owns the ids with id%2 == w, so it knows their final state.
	final := make([][]float32, n)
	for w := range 2 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 31))
			for i := range n / 2 {
				if id := 2*i + w; id < n/2 {
					final[id] = base[id]
				}
			}
			for range ops {
				id := 2*rng.IntN(n/2) + w
				if rng.IntN(3) == 0 {
					h.Delete(uint32(id))
					final[id] = nil
					continue
				}
				v := base[rng.IntN(n)]
				if err := h.Upsert(uint32(id), v); err != nil {
					t.Error(err)
					return
				}
				final[id] = v
			}
		}()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			h.Compact()
			compactions.Add(1)
		}
	}()
	writers.Wait()
	stop.Store(true)
	searchers.Wait()
	<-done
	h.bg.Wait()
	if searches.Load() == 0 || compactions.Load() == 0 {
		t.Fatalf("%d searches and %d explicit compactions ran", searches.Load(), compactions.Load())
	}

	truth := NewFlat(dim, Cosine)
	for id, v := range final {
		if v != nil {
			mustUpsert(t, truth, uint32(id), v)
		}
	}
	h.Compact()
	st := h.Stats()
	t.Logf("%d searches, %d explicit compactions, Stats %+v", searches.Load(), compactions.Load(), st)
	if st.Deleted != 0 || st.Live != truth.Len() || h.Len() != truth.Len() {
		t.Fatalf("Stats after the hammer and a final Compact = %+v, want Live %d, Deleted 0", st, truth.Len())
	}
	all := h.Search(queries[0], n+300, nil, nil)
	checkSorted(t, all)
	if len(all) != truth.Len() {
		t.Fatalf("Search for all returned %d ids, want %d", len(all), truth.Len())
	}
	want := scores(truth, queries[0])
	for _, r := range all {
		sc, ok := want[r.ID]
		if !ok {
			t.Fatalf("id %d returned, but its last operation was a Delete", r.ID)
		}
		if math.Abs(float64(r.Score-sc)) > 1e-5 {
			t.Fatalf("id %d scored %v, want %v (its last vector)", r.ID, r.Score, sc)
		}
	}
	if r := recallAt(t, h, truth, queries, 10, nil); r < 0.9 {
		t.Errorf("recall@10 after the hammer = %.3f", r)
	}
}
