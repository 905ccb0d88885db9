package ann

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/podium-rank/podium/engine/demo"
)

// The demo-like data set: 100k × 64 in 1000 clusters with demo.DefaultConfig's spread and
// seed, cosine, and held-out queries drawn from the same clusters. Data, ground truth and
// built indexes are cached for the whole test binary run, so sub-benchmarks share one build.
const (
	demoN        = 100_000
	demoDim      = 64
	demoClusters = 1000
	demoQueries  = 200
	demoLists    = 316 // ≈ √N
)

type demoData struct {
	base, queries [][]float32
	flat          *Flat
	truth100      [][]Result // exact top 100 per query
	truth500      [][]Result // exact top 500 per query
	truthF        [][]Result // exact top 100 per query under demoFilter

	mu        sync.Mutex
	hnsw      *HNSW
	hnswBuild time.Duration
	hnswHeap  uint64
	ivf       *IVF
	ivfBuild  time.Duration
	ivfHeap   uint64
}

// demoFilter allows one id in ten, like an in-stock or category filter.
var demoFilter = FilterFunc(func(id uint32) bool { return id%10 == 3 })

var (
	demoOnce sync.Once
	demoSet  *demoData
)

func getDemo(tb testing.TB) *demoData {
	demoOnce.Do(func() {
		cfg := demo.DefaultConfig()
		base, queries := clustered(demoN, demoQueries, demoDim, demoClusters, cfg.Spread, cfg.Seed)
		d := &demoData{base: base, queries: queries, flat: NewFlat(demoDim, Cosine)}
		fill(tb, d.flat, base)
		for _, q := range queries {
			d.truth100 = append(d.truth100, d.flat.Search(q, 100, nil, nil))
			d.truth500 = append(d.truth500, d.flat.Search(q, 500, nil, nil))
			d.truthF = append(d.truthF, d.flat.Search(q, 100, demoFilter, nil))
		}
		demoSet = d
	})
	return demoSet
}

// heapAlloc returns the live heap after a full collection.
func heapAlloc() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// buildHNSW builds the demo HNSW with one goroutine (so items/s is per core) and caches the
// first one built.
func (d *demoData) buildHNSW(tb testing.TB) *HNSW {
	before := heapAlloc()
	start := time.Now()
	h := NewHNSW(demoDim, Cosine, HNSWConfig{})
	fill(tb, h, d.base)
	took := time.Since(start)
	mem := heapAlloc() - before
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.hnsw == nil {
		d.hnsw, d.hnswBuild, d.hnswHeap = h, took, mem
	}
	return h
}

func (d *demoData) getHNSW(tb testing.TB) *HNSW {
	d.mu.Lock()
	h := d.hnsw
	d.mu.Unlock()
	if h == nil {
		h = d.buildHNSW(tb)
	}
	return h
}

// buildIVF fills an IVF with demoLists lists and trains it once on all the data.
func (d *demoData) buildIVF(tb testing.TB) *IVF {
	before := heapAlloc()
	start := time.Now()
	v := NewIVF(demoDim, Cosine, IVFConfig{Lists: demoLists, TrainSize: demoN + 1})
	fill(tb, v, d.base)
	v.Train()
	took := time.Since(start)
	mem := heapAlloc() - before
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ivf == nil {
		d.ivf, d.ivfBuild, d.ivfHeap = v, took, mem
	}
	return v
}

func (d *demoData) getIVF(tb testing.TB) *IVF {
	d.mu.Lock()
	v := d.ivf
	d.mu.Unlock()
	if v == nil {
		v = d.buildIVF(tb)
	}
	return v
}

// recallVs returns the mean recall of results against the exact lists truth.
func recallVs(got, truth [][]Result) float64 {
	var hit, total int
	for i := range truth {
		set := make(map[uint32]bool, len(truth[i]))
		for _, r := range truth[i] {
			set[r.ID] = true
		}
		for _, r := range got[i] {
			if set[r.ID] {
				hit++
			}
		}
		total += len(truth[i])
	}
	return float64(hit) / float64(total)
}

// searchAll runs every query once and returns the results and the mean time per query.
func searchAll(queries [][]float32, k int, search func(q []float32, dst []Result) []Result) ([][]Result, time.Duration) {
	out := make([][]Result, len(queries))
	start := time.Now()
	for i, q := range queries {
		out[i] = search(q, make([]Result, 0, k))
	}
	return out, time.Since(start) / time.Duration(len(queries))
}

// benchQueries times search over the demo queries and reports recall against truth and qps.
func benchQueries(b *testing.B, queries [][]float32, truth [][]Result, k int, search func(q []float32, dst []Result) []Result) float64 {
	b.ReportAllocs()
	dst := make([]Result, 0, k)
	i := 0
	for b.Loop() {
		dst = search(queries[i%len(queries)], dst)
		i++
	}
	ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	got, _ := searchAll(queries, k, search)
	b.ReportMetric(recallVs(got, truth), fmt.Sprintf("recall@%d", k))
	b.ReportMetric(1e9/ns, "qps")
	return ns
}

// BenchmarkDemo measures HNSW, IVF and Flat on the demo-like data: build throughput and
// memory, and k=100 queries at several settings with their recall@100. Flat's ns/op is the
// baseline; the speed-up of a line is Flat's ns/op over its own.
//
//	go test -run '^$' -bench BenchmarkDemo -benchtime 2s ./engine/ann/
func BenchmarkDemo(b *testing.B) {
	d := getDemo(b)
	b.Run("Build/HNSW", func(b *testing.B) {
		for b.Loop() {
			d.buildHNSW(b)
		}
		b.ReportMetric(float64(demoN)*float64(b.N)/b.Elapsed().Seconds(), "items/s")
		b.ReportMetric(float64(d.hnswHeap)/demoN, "heap-B/item")
		b.ReportMetric(float64(d.getHNSW(b).Stats().Bytes)/demoN, "stats-B/item")
	})
	b.Run("Build/IVF", func(b *testing.B) {
		for b.Loop() {
			d.buildIVF(b)
		}
		b.ReportMetric(float64(demoN)*float64(b.N)/b.Elapsed().Seconds(), "items/s")
		b.ReportMetric(float64(d.ivfHeap)/demoN, "heap-B/item")
		b.ReportMetric(float64(d.getIVF(b).Stats().Bytes)/demoN, "stats-B/item")
	})
	b.Run("k=100/Flat", func(b *testing.B) {
		benchQueries(b, d.queries, d.truth100, 100, func(q []float32, dst []Result) []Result {
			return d.flat.Search(q, 100, nil, dst)
		})
	})
	h := d.getHNSW(b)
	for _, ef := range []int{100, 128, 200} {
		b.Run(fmt.Sprintf("k=100/HNSW/ef=%d", ef), func(b *testing.B) {
			benchQueries(b, d.queries, d.truth100, 100, func(q []float32, dst []Result) []Result {
				return h.SearchEf(q, 100, ef, nil, dst)
			})
		})
	}
	v := d.getIVF(b)
	for _, np := range []int{8, 16, 32, 64} {
		b.Run(fmt.Sprintf("k=100/IVF/nprobe=%d", np), func(b *testing.B) {
			benchQueries(b, d.queries, d.truth100, 100, func(q []float32, dst []Result) []Result {
				return v.SearchNprobe(q, 100, np, nil, dst)
			})
		})
	}
	b.Run("k=500/HNSW/ef=500", func(b *testing.B) {
		benchQueries(b, d.queries, d.truth500, 500, func(q []float32, dst []Result) []Result {
			return h.SearchEf(q, 500, 500, nil, dst)
		})
	})
	b.Run("k=500/IVF/nprobe=64", func(b *testing.B) {
		benchQueries(b, d.queries, d.truth500, 500, func(q []float32, dst []Result) []Result {
			return v.SearchNprobe(q, 500, 64, nil, dst)
		})
	})
	b.Run("k=500/Flat", func(b *testing.B) {
		benchQueries(b, d.queries, d.truth500, 500, func(q []float32, dst []Result) []Result {
			return d.flat.Search(q, 500, nil, dst)
		})
	})
	// One id in ten allowed.
	b.Run("filtered/HNSW", func(b *testing.B) {
		benchQueries(b, d.queries, d.truthF, 100, func(q []float32, dst []Result) []Result {
			return h.Search(q, 100, demoFilter, dst)
		})
	})
	b.Run("filtered/IVF/nprobe=16", func(b *testing.B) {
		benchQueries(b, d.queries, d.truthF, 100, func(q []float32, dst []Result) []Result {
			return v.SearchNprobe(q, 100, 16, demoFilter, dst)
		})
	})
	b.Run("filtered/Flat", func(b *testing.B) {
		benchQueries(b, d.queries, d.truthF, 100, func(q []float32, dst []Result) []Result {
			return d.flat.Search(q, 100, demoFilter, dst)
		})
	})
	// Compare with k=100/HNSW/ef=100 (one goroutine) for the scaling over GOMAXPROCS.
	b.Run("parallel/HNSW/ef=100", func(b *testing.B) {
		b.ReportAllocs()
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			dst := make([]Result, 0, 100)
			for pb.Next() {
				dst = h.Search(d.queries[int(next.Add(1))%len(d.queries)], 100, nil, dst)
			}
		})
	})
}

// TestReportANN prints the demo comparison as a markdown table. It builds 100k-vector indexes,
// so it runs only with PODIUM_ANN_REPORT=1:
//
//	PODIUM_ANN_REPORT=1 go test -run TestReportANN -v ./engine/ann/
func TestReportANN(t *testing.T) {
	if os.Getenv("PODIUM_ANN_REPORT") != "1" || raceEnabled {
		t.Skip("set PODIUM_ANN_REPORT=1 (without -race) to print the ANN comparison table")
	}
	d := getDemo(t)
	h := d.getHNSW(t)
	v := d.getIVF(t)
	fmt.Printf("\nDemo data: %d × %d, %d clusters, cosine, %d queries, GOMAXPROCS %d\n\n", demoN, demoDim, demoClusters, demoQueries, runtime.GOMAXPROCS(0))
	fmt.Printf("| index | build | items/s | heap B/item | Stats B/item |\n|---|---|---|---|---|\n")
	fmt.Printf("| HNSW (M 16, efC 200, 1 goroutine) | %v | %.0f | %.0f | %.0f |\n", d.hnswBuild.Round(time.Millisecond),
		demoN/d.hnswBuild.Seconds(), float64(d.hnswHeap)/demoN, float64(h.Stats().Bytes)/demoN)
	fmt.Printf("| IVF (%d lists) | %v | %.0f | %.0f | %.0f |\n\n", demoLists, d.ivfBuild.Round(time.Millisecond),
		demoN/d.ivfBuild.Seconds(), float64(d.ivfHeap)/demoN, float64(v.Stats().Bytes)/demoN)

	type row struct {
		name   string
		k      int
		truth  [][]Result
		search func(q []float32, dst []Result) []Result
	}
	rows := []row{
		{"Flat", 100, d.truth100, func(q []float32, dst []Result) []Result { return d.flat.Search(q, 100, nil, dst) }},
	}
	for _, ef := range []int{100, 128, 200, 300} {
		rows = append(rows, row{fmt.Sprintf("HNSW ef=%d", ef), 100, d.truth100, func(q []float32, dst []Result) []Result { return h.SearchEf(q, 100, ef, nil, dst) }})
	}
	for _, np := range []int{4, 8, 16, 32, 64} {
		rows = append(rows, row{fmt.Sprintf("IVF nprobe=%d", np), 100, d.truth100, func(q []float32, dst []Result) []Result { return v.SearchNprobe(q, 100, np, nil, dst) }})
	}
	rows = append(rows,
		row{"Flat", 500, d.truth500, func(q []float32, dst []Result) []Result { return d.flat.Search(q, 500, nil, dst) }},
		row{"HNSW ef=500", 500, d.truth500, func(q []float32, dst []Result) []Result { return h.SearchEf(q, 500, 500, nil, dst) }},
		row{"IVF nprobe=32", 500, d.truth500, func(q []float32, dst []Result) []Result { return v.SearchNprobe(q, 500, 32, nil, dst) }},
		row{"IVF nprobe=64", 500, d.truth500, func(q []float32, dst []Result) []Result { return v.SearchNprobe(q, 500, 64, nil, dst) }},
	)
	for _, m := range []uint32{2, 10, 100} {
		f := FilterFunc(func(id uint32) bool { return id%m == 3%m })
		var truth [][]Result
		for _, q := range d.queries {
			truth = append(truth, d.flat.Search(q, 100, f, nil))
		}
		rows = append(rows,
			row{fmt.Sprintf("Flat, filter 1/%d", m), 100, truth, func(q []float32, dst []Result) []Result { return d.flat.Search(q, 100, f, dst) }},
			row{fmt.Sprintf("HNSW ef=100, filter 1/%d", m), 100, truth, func(q []float32, dst []Result) []Result { return h.Search(q, 100, f, dst) }},
			row{fmt.Sprintf("IVF nprobe=16, filter 1/%d", m), 100, truth, func(q []float32, dst []Result) []Result { return v.SearchNprobe(q, 100, 16, f, dst) }},
		)
	}
	fmt.Printf("| query | k | recall@k | µs/query | speed-up vs Flat |\n|---|---|---|---|---|\n")
	var flatT time.Duration
	for _, r := range rows {
		// Two passes; time the second (warm caches).
		searchAll(d.queries, r.k, r.search)
		got, dt := searchAll(d.queries, r.k, r.search)
		if strings.HasPrefix(r.name, "Flat") {
			flatT = dt
		}
		fmt.Printf("| %s | %d | %.4f | %.0f | %.1f |\n", r.name, r.k, recallVs(got, r.truth), float64(dt)/1e3, float64(flatT)/float64(dt))
	}
}
