package ann

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/podium-rank/podium/engine/demo"
)

// TestReportChurn prints what churn does to an HNSW index with and without compaction, as
// markdown tables for bench/README.md. It builds several 50k × 64 indexes (about two minutes on
// two cores), so it runs only with PODIUM_ANN_REPORT=1; PODIUM_CHURN_N changes the size:
//
//	PODIUM_ANN_REPORT=1 go test -run TestReportChurn -v -timeout 30m ./engine/ann/
func TestReportChurn(t *testing.T) {
	if os.Getenv("PODIUM_ANN_REPORT") != "1" || raceEnabled {
		t.Skip("set PODIUM_ANN_REPORT=1 (without -race) to print the churn report")
	}
	n := 50_000
	if v, err := strconv.Atoi(os.Getenv("PODIUM_CHURN_N")); err == nil && v > 0 {
		n = v
	}
	const dim, nq, waves, share = 64, 300, 4, 0.5
	extra := int(float64(n) * share * waves)
	spread := demo.DefaultConfig().Spread
	flat, _ := demo.ClusteredVectors(n+extra+nq, dim, n/50, spread, 7)
	all := rows(flat, dim)
	vecs, queries := all[:n+extra], all[n+extra:]
	fmt.Printf("\n%d × %d, %d clusters, spread %.2f, cosine, %d queries, GOMAXPROCS %d; %d waves, each deletes %.0f %% of the live ids and inserts as many under new ids\n",
		n, dim, n/50, spread, nq, runtime.GOMAXPROCS(0), waves, share*100)
	for _, oldest := range []bool{false, true} {
		order := "random ids"
		if oldest {
			order = "oldest ids first"
		}
		reportChurn(t, planChurn(vecs, n, waves, share, oldest, 1), queries, dim, order)
	}
}

type churnRow struct {
	name string
	h    *HNSW
}

func reportChurn(t *testing.T, c *churn, queries [][]float32, dim int, order string) {
	never := HNSWConfig{CompactAt: -1}
	before := NewHNSW(dim, Cosine, never)
	keep := NewHNSW(dim, Cosine, never)
	each := NewHNSW(dim, Cosine, never)
	auto := NewHNSW(dim, Cosine, HNSWConfig{})
	var compactTime time.Duration
	var compactN int
	parallel(4, func(i int) {
		h := []*HNSW{before, keep, each, auto}[i]
		c.build(t, h)
		if h == before {
			return
		}
		for w := range c.waves {
			c.wave(t, h, w)
			if h == each {
				start := time.Now()
				compactN += h.Compact()
				compactTime += time.Since(start)
			}
		}
	})
	auto.bg.Wait()
	start := time.Now()
	fresh := NewHNSW(dim, Cosine, HNSWConfig{})
	for _, id := range c.live {
		mustUpsert(t, fresh, id, c.vecs[id])
	}
	freshTime := time.Since(start)
	truth := c.flat(dim)
	first := &churn{vecs: c.vecs, n: c.n}
	for i := range c.n {
		first.live = append(first.live, uint32(i))
	}
	truthBefore := first.flat(dim)

	fmt.Printf("\n### Churn, %s\n\n", order)
	fmt.Printf("| index | nodes (live + tombstones) | layer-0 degree | recall@10 ef 10 | scored/query | µs/query | recall@10 ef 64 | scored/query | µs/query | Stats B/live item |\n|---|---|---|---|---|---|---|---|---|---|\n")
	rowsOut := []churnRow{
		{"before churn", before},
		{"after churn, tombstones only", keep},
		{"after churn, Compact after each wave", each},
		{"after churn, automatic (CompactAt 0.25)", auto},
		{"fresh build of the live set", fresh},
	}
	// Three rounds with the rows interleaved; each cell keeps its fastest round.
	type cell struct {
		recall, scored float64
		us             float64
	}
	best := make([][2]cell, len(rowsOut))
	for round := range 3 {
		for i, r := range rowsOut {
			tr := truth
			if r.h == before {
				tr = truthBefore
			}
			for j, ef := range []int{10, 64} {
				var got, want [][]Result
				scored := 0
				dst := make([]Result, 0, 10)
				start := time.Now()
				for _, q := range queries {
					var v int
					dst, v = r.h.searchEf(q, 10, ef, nil, dst)
					got = append(got, slices.Clone(dst))
					scored += v
				}
				us := float64(time.Since(start).Microseconds()) / float64(len(queries))
				for _, q := range queries {
					want = append(want, tr.Search(q, 10, nil, nil))
				}
				if round == 0 || us < best[i][j].us {
					best[i][j] = cell{recallVs(got, want), float64(scored) / float64(len(queries)), us}
				}
			}
		}
	}
	for i, r := range rowsOut {
		st := r.h.Stats()
		fmt.Printf("| %s | %d + %d | %.1f | %.4f | %.0f | %.1f | %.4f | %.0f | %.1f | %d |\n", r.name, st.Live, st.Deleted, meanDegree(r.h),
			best[i][0].recall, best[i][0].scored, best[i][0].us, best[i][1].recall, best[i][1].scored, best[i][1].us, st.Bytes/int64(st.Live))
	}
	ast := auto.Stats()
	fmt.Printf("\nCompact after each wave: %d compactions, %d nodes reclaimed, %v per compaction (%.0f ns per reclaimed node). "+
		"Automatic: %d compactions, %d reclaimed. Fresh build of the %d live items (1 goroutine): %v, %.1f× one compaction.\n",
		len(c.waves), compactN, (compactTime / time.Duration(len(c.waves))).Round(time.Millisecond),
		float64(compactTime.Nanoseconds())/float64(max(compactN, 1)), ast.Compactions, ast.Reclaimed, len(c.live),
		freshTime.Round(time.Millisecond), float64(freshTime)/float64(compactTime/time.Duration(len(c.waves))))

	// Search latency on one goroutine while the tombstoned index compacts on another, against
	// the same searches with nothing else running.
	lat := func(h *HNSW, stop *atomic.Bool, min int) []time.Duration {
		var out []time.Duration
		dst := make([]Result, 0, 10)
		for i := 0; !stop.Load() || i < min; i++ {
			start := time.Now()
			dst = h.Search(queries[i%len(queries)], 10, nil, dst)
			out = append(out, time.Since(start))
		}
		return out
	}
	var stop atomic.Bool
	stop.Store(true)
	idle := lat(keep, &stop, 3000)
	stop.Store(false)
	var during []time.Duration
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		during = lat(keep, &stop, 0)
	}()
	start = time.Now()
	reclaimed := keep.Compact()
	took := time.Since(start)
	stop.Store(true)
	wg.Wait()
	pct := func(d []time.Duration, p float64) time.Duration {
		s := slices.Clone(d)
		slices.Sort(s)
		return s[int(p*float64(len(s)-1))]
	}
	r10, _ := recallVisits(keep, truth, queries, 10, 10)
	fmt.Printf("\nOne compaction of the tombstoned index (%d tombstones, %.0f %% of its nodes): %v. Searches on the other core, ef 64, k 10:\n\n",
		reclaimed, 100*float64(reclaimed)/float64(reclaimed+keep.Len()), took.Round(time.Millisecond))
	fmt.Printf("| searches | count | p50 | p99 |\n|---|---|---|---|\n")
	fmt.Printf("| nothing else running (before the compaction) | %d | %v | %v |\n", len(idle), pct(idle, 0.5), pct(idle, 0.99))
	fmt.Printf("| during the compaction | %d | %v | %v |\n", len(during), pct(during, 0.5), pct(during, 0.99))
	after := lat(keep, &stop, 3000)
	fmt.Printf("| after it | %d | %v | %v |\n", len(after), pct(after, 0.5), pct(after, 0.99))
	fmt.Printf("\nAfter that one compaction: recall@10 at ef 10 = %.4f, Stats %d B per live item.\n", r10, keep.Stats().Bytes/int64(keep.Len()))
}

// meanDegree returns the mean layer-0 degree of the stored nodes.
func meanDegree(h *HNSW) float64 {
	tot, n := 0, 0
	for ci, c := range *h.dir.Load() {
		if c == nil {
			continue
		}
		for i := range c.slot {
			if c.slot[i].Load() != 0 {
				tot += len(h.neighbors(uint32(ci<<chunkBits|i), 0, nil))
				n++
			}
		}
	}
	return float64(tot) / float64(max(n, 1))
}
