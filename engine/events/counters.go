package events

import (
	"math"
	"sync"
	"sync/atomic"
)

// Item counters use forward decay (Cormode et al., "Forward Decay", ICDE 2009): an event of
// weight w at time t adds w·e^{λ(t−t0)} to the stored value, and a read at time now
// multiplies by e^{−λ(now−t0)}. So an add is one atomic float add with no per-item
// timestamp, a read is one multiply, and events may arrive out of order. The stored values
// grow with t, so when e^{λ(t−t0)} would pass e^rebaseExp every value is rescaled to a new
// landmark t0 (under the write lock; with a one-hour half-life, every 72 hours).
const rebaseExp = 50

const (
	counterChunkBits  = 12
	counterChunkItems = 1 << counterChunkBits
)

// itemCounters holds, per dense item id, numCounted×len(windows) decayed counts, item-major
// (an item's counts share a cache line or two). Adds are lock-free atomic float adds under
// a read lock that only a rebase takes exclusively; reads take the read lock once per call.
type itemCounters struct {
	nwin    int
	ncols   int
	rates   []float64 // per window, per nanosecond
	maxRate float64

	mu     sync.RWMutex
	t0     int64 // landmark, Unix ns; changed only under mu.Lock
	hasT0  bool
	growMu sync.Mutex
	dir    atomic.Pointer[[]*[]uint32] // chunks of counterChunkItems*ncols float32 bits
	totals []atomic.Uint64             // float64 bits: per column, the sum over items
}

func newItemCounters(windows []Window) *itemCounters {
	c := &itemCounters{nwin: len(windows), ncols: numCounted * len(windows)}
	for _, w := range windows {
		c.rates = append(c.rates, rate(w.HalfLife))
		c.maxRate = max(c.maxRate, rate(w.HalfLife))
	}
	c.totals = make([]atomic.Uint64, c.ncols)
	c.dir.Store(new([]*[]uint32))
	return c
}

// col returns the column of counted type t (TypeView..TypeImpression) in window wi.
func (c *itemCounters) col(t Type, wi int) int { return int(t-1)*c.nwin + wi }

func (c *itemCounters) chunk(id uint32, grow bool) []uint32 {
	ci := int(id >> counterChunkBits)
	dir := *c.dir.Load()
	if ci < len(dir) && dir[ci] != nil {
		return *dir[ci]
	}
	if !grow {
		return nil
	}
	c.growMu.Lock()
	defer c.growMu.Unlock()
	dir = *c.dir.Load()
	if ci < len(dir) && dir[ci] != nil {
		return *dir[ci]
	}
	next := make([]*[]uint32, max(len(dir), ci+1))
	copy(next, dir)
	ch := make([]uint32, counterChunkItems*c.ncols)
	next[ci] = &ch
	c.dir.Store(&next)
	return ch
}

// needRebase reports whether an add at ts would overflow the current scale; call it under
// the read lock.
func (c *itemCounters) needRebase(ts int64) bool {
	return !c.hasT0 || float64(ts-c.t0)*c.maxRate > rebaseExp
}

// rebase moves the landmark to ts, rescaling every value.
func (c *itemCounters) rebase(ts int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.needRebase(ts) {
		return
	}
	if !c.hasT0 {
		c.t0, c.hasT0 = ts, true
		return
	}
	factors := make([]float64, c.nwin)
	for wi, r := range c.rates {
		factors[wi] = math.Exp(-r * float64(ts-c.t0))
	}
	for _, ch := range *c.dir.Load() {
		if ch == nil {
			continue
		}
		v := *ch
		for i := range v {
			f := factors[(i%c.ncols)%c.nwin]
			v[i] = math.Float32bits(float32(float64(math.Float32frombits(v[i])) * f))
		}
	}
	for i := range c.totals {
		c.totals[i].Store(math.Float64bits(math.Float64frombits(c.totals[i].Load()) * factors[i%c.nwin]))
	}
	c.t0 = ts
}

// add counts an event of type t and weight w at ts for item id in every window.
func (c *itemCounters) add(id uint32, t Type, w float64, ts int64) {
	c.mu.RLock()
	for c.needRebase(ts) {
		c.mu.RUnlock()
		c.rebase(ts)
		c.mu.RLock()
	}
	ch := c.chunk(id, true)
	base := int(id&(counterChunkItems-1))*c.ncols + int(t-1)*c.nwin
	for wi, r := range c.rates {
		inc := w * math.Exp(r*float64(ts-c.t0))
		addF32(&ch[base+wi], float32(inc))
		addF64(&c.totals[int(t-1)*c.nwin+wi], inc)
	}
	c.mu.RUnlock()
}

func addF32(p *uint32, d float32) {
	for {
		old := atomic.LoadUint32(p)
		if atomic.CompareAndSwapUint32(p, old, math.Float32bits(math.Float32frombits(old)+d)) {
			return
		}
	}
}

func addF64(p *atomic.Uint64, d float64) {
	for {
		old := p.Load()
		if p.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+d)) {
			return
		}
	}
}

// counterReader is a consistent view for reads at one time: per-window factors that turn stored
// values into counts at now. Hold it only between beginRead and endRead.
type counterReader struct {
	c       *itemCounters
	dir     []*[]uint32
	factors [8]float64
}

// beginRead takes the read lock and returns a reader for time now; call endRead after.
func (c *itemCounters) beginRead(now int64, r *counterReader) {
	c.mu.RLock()
	r.c = c
	r.dir = *c.dir.Load()
	for wi, rt := range c.rates {
		if c.hasT0 {
			r.factors[wi] = math.Exp(-rt * float64(now-c.t0))
		} else {
			r.factors[wi] = 0
		}
	}
}

func (c *itemCounters) endRead() { c.mu.RUnlock() }

// get returns column col of item id at the reader's time.
func (r *counterReader) get(id uint32, col int) float64 {
	ci := int(id >> counterChunkBits)
	if ci >= len(r.dir) || r.dir[ci] == nil {
		return 0
	}
	p := &(*r.dir[ci])[int(id&(counterChunkItems-1))*r.c.ncols+col]
	return float64(math.Float32frombits(atomic.LoadUint32(p))) * r.factors[col%r.c.nwin]
}

// row returns the stored (not yet decayed) values of item id, or nil.
func (r *counterReader) row(id uint32) []uint32 {
	ci := int(id >> counterChunkBits)
	if ci >= len(r.dir) || r.dir[ci] == nil {
		return nil
	}
	base := int(id&(counterChunkItems-1)) * r.c.ncols
	return (*r.dir[ci])[base : base+r.c.ncols]
}

// total returns the sum of column col over all items at the reader's time.
func (r *counterReader) total(col int) float64 {
	return math.Float64frombits(r.c.totals[col].Load()) * r.factors[col%r.c.nwin]
}

func atomicLoad(p *uint32) uint32 { return atomic.LoadUint32(p) }
