package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// Histogram layout: log-linear buckets over nanoseconds, in the manner of HdrHistogram.
// Values below 2*subCount ns get one bucket each (exact). Above that, every power of two
// [2^k, 2^(k+1)) is split into subCount equal buckets, so a bucket is at most 1/subCount
// (0.78%) of its lower bound wide and its midpoint is within 0.39% of any value in it.
// See RATIONALE.md "Why a log-linear histogram per worker?".
const (
	subBits  = 7
	subCount = 1 << subBits
	// maxBits bounds the recorded range: values of 2^maxBits ns (about 275 s) and more
	// land in the last bucket. Max stays exact.
	maxBits     = 38
	histBuckets = (maxBits - subBits + 1) * subCount // 4096
	maxValue    = 1<<maxBits - 1
)

// Histogram records durations in log-linear buckets with a relative error of at most
// 0.39% (exact below 256 ns) from 0 to about 275 s. It does not allocate after creation
// and recording is a few integer operations. The zero value is an empty histogram ready
// to use. A Histogram is not goroutine-safe: give each goroutine its own and Merge them.
type Histogram struct {
	counts [histBuckets]uint64
	n      uint64
	sum    uint64 // nanoseconds
	min    uint64
	max    uint64
	top    int // highest non-empty bucket index + 1
}

// bucketOf returns the bucket index of v nanoseconds; v must be at most maxValue.
func bucketOf(v uint64) int {
	if v < 2*subCount {
		return int(v)
	}
	e := bits.Len64(v) - (subBits + 1)
	return e*subCount + int(v>>uint(e))
}

// bucketBounds returns the lowest value of bucket i and the bucket's width.
func bucketBounds(i int) (lo, width uint64) {
	if i < 2*subCount {
		return uint64(i), 1
	}
	e := uint(i/subCount - 1)
	m := uint64(i%subCount + subCount)
	return m << e, 1 << e
}

// Record adds one duration. Negative durations count as zero; durations longer than
// about 275 s are counted in the last bucket but still update Max exactly.
func (h *Histogram) Record(d time.Duration) {
	v := uint64(0)
	if d > 0 {
		v = uint64(d)
	}
	b := v
	if b > maxValue {
		b = maxValue
	}
	i := bucketOf(b)
	h.counts[i]++
	if i >= h.top {
		h.top = i + 1
	}
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += v
}

// Merge adds every value recorded in o to h. o is not modified.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i := 0; i < o.top; i++ {
		h.counts[i] += o.counts[i]
	}
	if o.top > h.top {
		h.top = o.top
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// Reset empties the histogram.
func (h *Histogram) Reset() {
	clear(h.counts[:h.top])
	h.n, h.sum, h.min, h.max, h.top = 0, 0, 0, 0, 0
}

// Count returns the number of recorded values.
func (h *Histogram) Count() int64 { return int64(h.n) }

// Min returns the smallest recorded value exactly, or 0 if the histogram is empty.
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Max returns the largest recorded value exactly, or 0 if the histogram is empty.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean returns the exact arithmetic mean of the recorded values, or 0 if there are none.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / h.n)
}

// Quantile returns the value at quantile q (0 < q <= 1): the smallest recorded value v
// such that at least q of all values are <= v, approximated by the midpoint of its bucket
// (clamped to the exact Min and Max), so within 0.39% of the true value. Quantile(1)
// equals Max. It returns 0 for an empty histogram.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	// The epsilon keeps float error in q*n (0.999*1000) from bumping the rank by one.
	rank := uint64(math.Ceil(q*float64(h.n) - 1e-9))
	rank = max(rank, 1)
	rank = min(rank, h.n)
	var seen uint64
	for i := 0; i < h.top; i++ {
		seen += h.counts[i]
		if seen >= rank {
			if i == histBuckets-1 {
				return time.Duration(h.max) // holds everything beyond the range
			}
			lo, w := bucketBounds(i)
			v := lo + w/2
			v = max(v, h.min)
			v = min(v, h.max)
			return time.Duration(v)
		}
	}
	return time.Duration(h.max)
}
