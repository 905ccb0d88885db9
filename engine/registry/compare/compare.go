// Package compare measures how a challenger plugin differs from the champion on the same
// requests (overlap@k, Kendall tau, score deltas) and how each runs (latency, faults).
//
// The live layer (engine/live.go) feeds it: Window on every stage run, Pair from the shadow
// workers. See RATIONALE.md, "Why these comparison statistics?".
package compare

import (
	"math"
	"math/bits"
	"sync"
	"time"
)

// histBuckets is the number of latency buckets: 4 per power of two of microseconds, from
// 1 µs to about 2^40 µs.
const histBuckets = 4 * 40

// Histogram counts latencies in log-linear buckets (4 per power of two, so a quantile is
// within 19% of the truth). The zero value is empty. It is not goroutine-safe.
type Histogram struct {
	n   uint64
	sum time.Duration
	b   [histBuckets]uint64
}

func bucketOf(d time.Duration) int {
	us := uint64(d / time.Microsecond)
	if us < 4 {
		return int(us)
	}
	o := bits.Len64(us) - 1 // us in [2^o, 2^(o+1))
	i := 4*o + int(us>>(o-2)&3)
	return min(i, histBuckets-1)
}

// upper returns the upper edge of bucket i.
func upper(i int) time.Duration {
	if i < 4 {
		return time.Duration(i+1) * time.Microsecond
	}
	if i < 8 { // unused: 4..7 µs fall in buckets 8..11
		return 4 * time.Microsecond
	}
	o, sub := i/4, i%4
	return time.Duration((uint64(4+sub+1)<<(o-2))-1) * time.Microsecond
}

// Record adds one latency.
func (h *Histogram) Record(d time.Duration) {
	h.n++
	h.sum += d
	h.b[bucketOf(d)]++
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	h.n += o.n
	h.sum += o.sum
	for i := range h.b {
		h.b[i] += o.b[i]
	}
}

// Count returns the number of latencies recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Mean returns the mean latency, 0 when empty.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}

// Quantile returns the upper edge of the bucket holding quantile q (0 < q <= 1), 0 when
// empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	var c uint64
	for i, x := range h.b {
		c += x
		if c >= rank {
			return upper(i)
		}
	}
	return upper(histBuckets - 1)
}

// Run is one measured stage run.
type Run struct {
	Took time.Duration
	// Fault is set when the plugin faulted (trap, timeout, bad output, memory, init).
	Fault bool
	// FellBack is set when the stage failed for any reason and the pipeline fell back.
	FellBack bool
}

// Totals are the counts and latency of a set of runs.
type Totals struct {
	Runs      uint64
	Faults    uint64
	Fallbacks uint64
	Latency   Histogram
}

// Add records one run.
func (t *Totals) Add(r Run) {
	t.Runs++
	if r.Fault {
		t.Faults++
	}
	if r.FellBack {
		t.Fallbacks++
	}
	t.Latency.Record(r.Took)
}

// Merge adds o to t.
func (t *Totals) Merge(o *Totals) {
	t.Runs += o.Runs
	t.Faults += o.Faults
	t.Fallbacks += o.Fallbacks
	t.Latency.Merge(&o.Latency)
}

// Summary is a JSON-ready view of Totals.
type Summary struct {
	Runs         uint64  `json:"runs"`
	Faults       uint64  `json:"faults"`
	Fallbacks    uint64  `json:"fallbacks"`
	FaultRate    float64 `json:"fault_rate"`
	FallbackRate float64 `json:"fallback_rate"`
	MeanUS       float64 `json:"latency_mean_us"`
	P50US        float64 `json:"latency_p50_us"`
	P99US        float64 `json:"latency_p99_us"`
}

// Summary summarises t.
func (t *Totals) Summary() Summary {
	s := Summary{Runs: t.Runs, Faults: t.Faults, Fallbacks: t.Fallbacks,
		MeanUS: us(t.Latency.Mean()), P50US: us(t.Latency.Quantile(0.5)), P99US: us(t.Latency.Quantile(0.99))}
	if t.Runs > 0 {
		s.FaultRate = float64(t.Faults) / float64(t.Runs)
		s.FallbackRate = float64(t.Fallbacks) / float64(t.Runs)
	}
	return s
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// windowBuckets is the number of time buckets of a Window.
const windowBuckets = 12

// Window keeps the Totals of the runs of the last span of time, in windowBuckets time
// buckets (so the window slides in steps of span/12). It is goroutine-safe.
type Window struct {
	mu       sync.Mutex
	bucketNS int64
	b        [windowBuckets]struct {
		start int64
		t     Totals
	}
	all Totals // since creation
}

// NewWindow returns a window of span (at least 12 ns).
func NewWindow(span time.Duration) *Window {
	return &Window{bucketNS: max(int64(span)/windowBuckets, 1)}
}

// Span returns the window's length.
func (w *Window) Span() time.Duration { return time.Duration(w.bucketNS * windowBuckets) }

// Record adds a run that ended at now.
func (w *Window) Record(now time.Time, r Run) {
	k := now.UnixNano() / w.bucketNS
	w.mu.Lock()
	b := &w.b[int(uint64(k)%windowBuckets)]
	if b.start != k {
		b.start = k
		b.t = Totals{}
	}
	b.t.Add(r)
	w.all.Add(r)
	w.mu.Unlock()
}

// Last returns the totals of the window ending at now.
func (w *Window) Last(now time.Time) Totals {
	k := now.UnixNano() / w.bucketNS
	var t Totals
	w.mu.Lock()
	for i := range w.b {
		if b := &w.b[i]; b.start > k-windowBuckets && b.start <= k {
			t.Merge(&b.t)
		}
	}
	w.mu.Unlock()
	return t
}

// All returns the totals since the window was created.
func (w *Window) All() Totals {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.all
}
