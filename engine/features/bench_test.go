package features

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Benchmark data: 100k items with 64 stored features each; a request gathers 32 of them
// (every other column, so the arena touches four 64-byte lines per item) for 1000 random
// items. Requests cycle through 64 precomputed id lists so the working set is 64k items.
const (
	benchItems    = 100_000
	benchStored   = 64
	benchReqItems = 1000
	benchReqCols  = 32
	benchReqs     = 64
)

var (
	benchOnce   sync.Once
	benchStores []benchStore
	benchIDs    [][]uint32
	benchCols   []int
)

type benchStore struct {
	name string
	s    itemGatherer
}

func setupItemBench(b *testing.B) {
	benchOnce.Do(func() {
		stores := []benchStore{
			{"arena", NewItemStore(benchStored, 0)},
			{"fastcache", newFastcacheItemStore(benchStored, 256<<20)},
			{"map_rwmutex", newMapItemStore(benchStored)},
		}
		cols := make([]int, benchStored)
		vals := make([]float32, benchStored)
		for c := range cols {
			cols[c] = c
		}
		for id := uint32(0); id < benchItems; id++ {
			for c := range vals {
				vals[c] = float32(id) + float32(c)/100
			}
			for _, st := range stores {
				if err := st.s.SetRow(id, cols, vals); err != nil {
					panic(err)
				}
			}
		}
		rng := rand.New(rand.NewPCG(7, 7))
		benchIDs = make([][]uint32, benchReqs)
		for r := range benchIDs {
			benchIDs[r] = make([]uint32, benchReqItems)
			for i := range benchIDs[r] {
				benchIDs[r][i] = uint32(rng.IntN(benchItems))
			}
		}
		benchCols = make([]int, benchReqCols)
		for f := range benchCols {
			benchCols[f] = 2 * f
		}
		// Every store must return the full matrix (nothing evicted, nothing missing).
		want := stores[0].s.Gather(benchIDs[0], benchCols, nil)
		for _, st := range stores {
			got := st.s.Gather(benchIDs[0], benchCols, nil)
			for i := range want {
				if got[i] != want[i] || got[i] != got[i] {
					panic(fmt.Sprintf("%s: value %d is %v, want %v", st.name, i, got[i], want[i]))
				}
			}
		}
		stores = append(stores, benchStore{"arena_no_touch", arenaNoTouch{stores[0].s.(*ItemStore)}})
		benchStores = stores
	})
}

// BenchmarkItemGather reads 1000 random items × 32 features per op from each store.
func BenchmarkItemGather(b *testing.B) {
	setupItemBench(b)
	for _, st := range benchStores {
		b.Run("store="+st.name, func(b *testing.B) {
			dst := make([]float32, benchReqItems*benchReqCols)
			b.SetBytes(int64(4 * len(dst)))
			b.ReportAllocs()
			r := 0
			for b.Loop() {
				dst = st.s.Gather(benchIDs[r%benchReqs], benchCols, dst)
				r++
			}
		})
	}
}

// BenchmarkItemGatherHot is BenchmarkItemGather with the same 1000 ids on every op, so the
// items stay in cache: the cost without memory latency.
func BenchmarkItemGatherHot(b *testing.B) {
	setupItemBench(b)
	for _, st := range benchStores {
		b.Run("store="+st.name, func(b *testing.B) {
			dst := make([]float32, benchReqItems*benchReqCols)
			b.SetBytes(int64(4 * len(dst)))
			b.ReportAllocs()
			for b.Loop() {
				dst = st.s.Gather(benchIDs[0], benchCols, dst)
			}
		})
	}
}

// BenchmarkItemGatherParallel is BenchmarkItemGather from GOMAXPROCS goroutines.
func BenchmarkItemGatherParallel(b *testing.B) {
	setupItemBench(b)
	for _, st := range benchStores {
		b.Run("store="+st.name, func(b *testing.B) {
			b.SetBytes(4 * benchReqItems * benchReqCols)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				dst := make([]float32, benchReqItems*benchReqCols)
				r := rand.IntN(benchReqs)
				for pb.Next() {
					dst = st.s.Gather(benchIDs[r%benchReqs], benchCols, dst)
					r++
				}
			})
		})
	}
}

// BenchmarkItemGatherWhileWriting is BenchmarkItemGather with a goroutine rewriting one
// random item row (64 features) every 10 µs, as stock and price events do.
func BenchmarkItemGatherWhileWriting(b *testing.B) {
	setupItemBench(b)
	for _, st := range benchStores[:3] {
		b.Run("store="+st.name, func(b *testing.B) {
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				cols := make([]int, benchStored)
				vals := make([]float32, benchStored)
				for c := range cols {
					cols[c] = c
				}
				rng := rand.New(rand.NewPCG(3, 3))
				tick := time.NewTicker(10 * time.Microsecond)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
					}
					id := uint32(rng.IntN(benchItems))
					for c := range vals {
						vals[c] = float32(id) + float32(c)/100
					}
					_ = st.s.SetRow(id, cols, vals)
				}
			}()
			dst := make([]float32, benchReqItems*benchReqCols)
			b.SetBytes(int64(4 * len(dst)))
			b.ReportAllocs()
			r := 0
			for b.Loop() {
				dst = st.s.Gather(benchIDs[r%benchReqs], benchCols, dst)
				r++
			}
			b.StopTimer()
			close(stop)
			wg.Wait()
		})
	}
}

// mapUserStore is the user benchmark baseline: decoded rows in a map under a sync.RWMutex;
// a get copies the row into the caller's reusable row, as it must to release the lock.
type mapUserStore struct {
	mu sync.RWMutex
	m  map[uint32]*UserRow
}

func (s *mapUserStore) PutUser(id uint32, cols []int, vals []float32, emb []float32) {
	r := &UserRow{Cols: append([]int(nil), cols...), Vals: append([]float32(nil), vals...), Emb: append([]float32(nil), emb...)}
	s.mu.Lock()
	s.m[id] = r
	s.mu.Unlock()
}

func (s *mapUserStore) GetUser(id uint32, dst *UserRow) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.m[id]
	if !ok {
		dst.Reset()
		return false
	}
	dst.Cols = append(dst.Cols[:0], r.Cols...)
	dst.Vals = append(dst.Vals[:0], r.Vals...)
	dst.Emb = append(dst.Emb[:0], r.Emb...)
	return true
}

type userGetter interface {
	GetUser(id uint32, dst *UserRow) bool
}

// BenchmarkUserGet reads one random user (32 features + 64-d embedding) out of 100k and
// gathers its 32 features, from fastcache (UserStore) and from a map under an RWMutex.
func BenchmarkUserGet(b *testing.B) {
	const users = 100_000
	fc := NewUserStore(256 << 20)
	mp := &mapUserStore{m: make(map[uint32]*UserRow)}
	cols := make([]int, 32)
	vals := make([]float32, 32)
	emb := make([]float32, 64)
	for c := range cols {
		cols[c] = c
	}
	for u := uint32(0); u < users; u++ {
		for c := range vals {
			vals[c] = float32(u) + float32(c)
		}
		emb[0] = float32(u)
		if err := fc.PutUser(u, cols, vals, emb); err != nil {
			b.Fatal(err)
		}
		mp.PutUser(u, cols, vals, emb)
	}
	ids := make([]uint32, 4096)
	rng := rand.New(rand.NewPCG(5, 5))
	for i := range ids {
		ids[i] = uint32(rng.IntN(users))
	}
	for _, st := range []struct {
		name string
		s    userGetter
	}{{"fastcache", fc}, {"map_rwmutex", mp}} {
		get := func(row *UserRow, dst []float32, id uint32) []float32 {
			if !st.s.GetUser(id, row) || row.Emb[0] != float32(id) {
				panic("user missing or wrong")
			}
			return row.Gather(cols, dst)
		}
		b.Run("store="+st.name, func(b *testing.B) {
			b.ReportAllocs()
			var row UserRow
			dst := make([]float32, len(cols))
			i := 0
			for b.Loop() {
				dst = get(&row, dst, ids[i%len(ids)])
				i++
			}
		})
		b.Run("store="+st.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var row UserRow
				dst := make([]float32, len(cols))
				i := rand.IntN(len(ids))
				for pb.Next() {
					dst = get(&row, dst, ids[i%len(ids)])
					i++
				}
			})
		})
	}
}

// BenchmarkGCWith1MItems measures a forced GC while a store holding 1M items × 32 features
// is live, and reports the live heap objects. store=none is the baseline without a store.
// Run it alone (-bench GCWith1M): stores built by other benchmarks would add to every row.
func BenchmarkGCWith1MItems(b *testing.B) {
	if testing.Short() {
		b.Skip("builds 1M-item stores")
	}
	const items = 1_000_000
	builders := []struct {
		name  string
		build func() itemGatherer
	}{
		{"none", func() itemGatherer { return nil }},
		{"arena", func() itemGatherer { return NewItemStore(32, 0) }},
		{"fastcache", func() itemGatherer { return newFastcacheItemStore(32, 512<<20) }},
		{"map_rwmutex", func() itemGatherer { return newMapItemStore(32) }},
	}
	cols := make([]int, 32)
	vals := make([]float32, 32)
	for c := range cols {
		cols[c] = c
	}
	for _, bl := range builders {
		b.Run("store="+bl.name, func(b *testing.B) {
			s := bl.build()
			if s != nil {
				for id := uint32(0); id < items; id++ {
					vals[0] = float32(id)
					if err := s.SetRow(id, cols, vals); err != nil {
						b.Fatal(err)
					}
				}
			}
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ResetTimer()
			for b.Loop() {
				runtime.GC()
			}
			b.StopTimer()
			b.ReportMetric(float64(ms.HeapObjects), "heap-objects")
			b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap-MiB")
			runtime.KeepAlive(s)
		})
	}
}

// gatherNoTouch is ItemStore.Gather without the touch-ahead pass (the first version),
// kept so BenchmarkItemGather shows what that pass buys.
func (s *ItemStore) gatherNoTouch(ids []uint32, cols []int, dst []float32) []float32 {
	n := len(ids)
	need := n * len(cols)
	if cap(dst) < need {
		dst = make([]float32, need)
	}
	dst = dst[:need]
	for _, col := range cols {
		s.checkCol(col)
	}
	missing := Missing()
	dir := *s.dir.Load()
	for i, id := range ids {
		ci := int(id >> chunkBits)
		if ci >= len(dir) {
			for f := range cols {
				dst[f*n+i] = missing
			}
			continue
		}
		blocks := dir[ci].groups
		base := int(id&(chunkItems-1)) << groupBits
		for f, col := range cols {
			v := missing
			if b := blocks[col>>groupBits].Load(); b != nil {
				v = math.Float32frombits(atomic.LoadUint32(&b[base|col&(groupCols-1)]))
			}
			dst[f*n+i] = v
		}
	}
	return dst
}

type arenaNoTouch struct{ *ItemStore }

func (a arenaNoTouch) Gather(ids []uint32, cols []int, dst []float32) []float32 {
	return a.gatherNoTouch(ids, cols, dst)
}
