package loadgen

import (
	"math/rand/v2"
	"testing"
	"time"
)

// within reports whether got is within rel (relative) of want.
func within(got, want time.Duration, rel float64) bool {
	diff := float64(got - want)
	if diff < 0 {
		diff = -diff
	}
	return diff <= rel*float64(want)
}

func TestHistogramQuantiles(t *testing.T) {
	// values returns 1..n times unit, shuffled so that recording order does not matter.
	values := func(n int, unit time.Duration) []time.Duration {
		v := make([]time.Duration, n)
		for i := range v {
			v[i] = time.Duration(i+1) * unit
		}
		rand.New(rand.NewPCG(1, 2)).Shuffle(n, func(i, j int) { v[i], v[j] = v[j], v[i] })
		return v
	}
	tests := []struct {
		name string
		in   []time.Duration
		q    float64
		want time.Duration
	}{
		// The q-quantile of 1..n is ceil(q*n).
		{"1..1000µs p50", values(1000, time.Microsecond), 0.50, 500 * time.Microsecond},
		{"1..1000µs p90", values(1000, time.Microsecond), 0.90, 900 * time.Microsecond},
		{"1..1000µs p99", values(1000, time.Microsecond), 0.99, 990 * time.Microsecond},
		{"1..1000µs p99.9", values(1000, time.Microsecond), 0.999, 999 * time.Microsecond},
		{"1..1000µs max", values(1000, time.Microsecond), 1, 1000 * time.Microsecond},
		{"1..10000ms p50", values(10000, time.Millisecond), 0.50, 5000 * time.Millisecond},
		{"1..10000ms p99.9", values(10000, time.Millisecond), 0.999, 9990 * time.Millisecond},
		{"1..200ns p50 exact", values(200, time.Nanosecond), 0.50, 100},
		{"1..200ns p99 exact", values(200, time.Nanosecond), 0.99, 198},
		{"single 60s", []time.Duration{60 * time.Second}, 0.5, 60 * time.Second},
		{"single 1µs", []time.Duration{time.Microsecond}, 0.999, time.Microsecond},
		{"two values p50 is the lower", []time.Duration{time.Millisecond, time.Second}, 0.5, time.Millisecond},
		{"two values p51 is the upper", []time.Duration{time.Millisecond, time.Second}, 0.51, time.Second},
		{"beyond range keeps max", []time.Duration{time.Millisecond, 400 * time.Second}, 1, 400 * time.Second},
		{"negative counts as zero", []time.Duration{-5, 10}, 0.5, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h Histogram
			for _, v := range tc.in {
				h.Record(v)
			}
			got := h.Quantile(tc.q)
			if !within(got, tc.want, 0.01) {
				t.Fatalf("Quantile(%v) = %v, want %v ±1%%", tc.q, got, tc.want)
			}
		})
	}
}

func TestHistogramStatsExact(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Mean() != 0 || h.Max() != 0 || h.Count() != 0 {
		t.Fatal("empty histogram must report zeros")
	}
	for _, v := range []time.Duration{3 * time.Millisecond, 1234567, 7 * time.Microsecond} {
		h.Record(v)
	}
	if got := h.Count(); got != 3 {
		t.Fatalf("Count = %d, want 3", got)
	}
	if got, want := h.Min(), 7*time.Microsecond; got != want {
		t.Fatalf("Min = %v, want %v", got, want)
	}
	if got, want := h.Max(), 3*time.Millisecond; got != want {
		t.Fatalf("Max = %v, want %v", got, want)
	}
	if got, want := h.Mean(), (3*time.Millisecond+1234567+7*time.Microsecond)/3; got != want {
		t.Fatalf("Mean = %v, want %v", got, want)
	}
	h.Reset()
	if h.Count() != 0 || h.Quantile(0.99) != 0 || h.Max() != 0 {
		t.Fatal("Reset did not empty the histogram")
	}
}

// TestHistogramBucketError checks the precision claim for every bucket: each value maps
// to a bucket containing it whose midpoint is within 1/256 of it.
func TestHistogramBucketError(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	check := func(v uint64) {
		t.Helper()
		i := bucketOf(v)
		if i < 0 || i >= histBuckets {
			t.Fatalf("bucketOf(%d) = %d, out of range", v, i)
		}
		lo, w := bucketBounds(i)
		if v < lo || v >= lo+w {
			t.Fatalf("value %d not in bucket %d [%d, %d)", v, i, lo, lo+w)
		}
		mid := lo + w/2
		if diff := max(mid, v) - min(mid, v); float64(diff) > float64(v)/256 {
			t.Fatalf("value %d: bucket midpoint %d is off by %d (> 1/256)", v, mid, diff)
		}
	}
	for v := uint64(0); v < 5000; v++ {
		check(v)
	}
	for range 100000 {
		check(rng.Uint64N(maxValue + 1))
	}
	check(maxValue)
	// Buckets tile the range without gaps.
	for i := 1; i < histBuckets; i++ {
		plo, pw := bucketBounds(i - 1)
		lo, _ := bucketBounds(i)
		if plo+pw != lo {
			t.Fatalf("gap between bucket %d (ends %d) and %d (starts %d)", i-1, plo+pw, i, lo)
		}
	}
}

func TestHistogramMergeEqualsSingle(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var all, a, b Histogram
	for i := range 10000 {
		v := time.Duration(rng.ExpFloat64() * float64(time.Millisecond))
		all.Record(v)
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
	}
	var merged Histogram
	merged.Merge(&a)
	merged.Merge(&b)
	merged.Merge(new(Histogram)) // merging an empty one changes nothing
	if merged != all {
		t.Fatalf("merged histogram differs: %+v vs %+v", summarize(&merged), summarize(&all))
	}
}
