package ann

import (
	"sync"
	"sync/atomic"
)

// Id-indexed state and the vector arena are chunked: growing appends chunks and republishes a
// small directory, so nothing a reader may hold ever moves.
const (
	chunkBits = 12
	chunkSize = 1 << chunkBits
	chunkMask = chunkSize - 1

	rowBits = 10 // rows per vector-arena chunk: 1 << rowBits
	rowMask = 1<<rowBits - 1
)

// arena stores fixed-size float32 rows in chunks that never move. A row is written once, before
// its slot number is published through an atomic store, and is only reused after every search
// that could have read the slot has finished (see reclaimer).
type arena struct {
	dim int
	dir atomic.Pointer[[][]float32]

	mu   sync.Mutex
	next uint32   // next never-used slot; guarded by mu
	free []uint32 // reclaimed slots; guarded by mu
}

// row returns slot's row. The slot must have been published to the caller.
func (a *arena) row(slot uint32) []float32 {
	d := *a.dir.Load()
	c := d[slot>>rowBits]
	off := int(slot&rowMask) * a.dim
	return c[off : off+a.dim : off+a.dim]
}

// alloc returns an unused slot and its row.
func (a *arena) alloc() (uint32, []float32) {
	a.mu.Lock()
	var s uint32
	if n := len(a.free); n > 0 {
		s = a.free[n-1]
		a.free = a.free[:n-1]
	} else {
		s = a.next
		a.next++
		var d [][]float32
		if p := a.dir.Load(); p != nil {
			d = *p
		}
		if int(s>>rowBits) >= len(d) {
			nd := make([][]float32, len(d)+1)
			copy(nd, d)
			nd[len(d)] = make([]float32, (1<<rowBits)*a.dim)
			a.dir.Store(&nd)
		}
	}
	a.mu.Unlock()
	return s, a.row(s)
}

// release returns slots for reuse; nobody may read them any more.
func (a *arena) release(slots []uint32) {
	a.mu.Lock()
	a.free = append(a.free, slots...)
	a.mu.Unlock()
}

// bytes returns the memory the arena holds.
func (a *arena) bytes() int64 {
	p := a.dir.Load()
	if p == nil {
		return 0
	}
	return int64(len(*p)) * (1 << rowBits) * int64(a.dim) * 4
}

// reclaimer is a two-epoch reclamation scheme for arena slots. Every operation that reads rows
// pins the current epoch; a slot retired in epoch R is reused once the epoch has reached R+2,
// which needs every operation pinned in epoch R or earlier to have unpinned. Searches never
// block: pinning is two atomic adds.
type reclaimer struct {
	epoch   atomic.Uint64
	active  [2]atomic.Int64
	pending atomic.Int64 // retired slots not yet handed back

	mu      sync.Mutex
	retired []retiredSlot // guarded by mu
}

type retiredSlot struct {
	slot  uint32
	epoch uint64
}

// pin registers a reader in the current epoch and returns the epoch to pass to unpin.
func (r *reclaimer) pin() uint64 {
	for {
		e := r.epoch.Load()
		r.active[e&1].Add(1)
		if r.epoch.Load() == e {
			return e
		}
		r.active[e&1].Add(-1)
	}
}

func (r *reclaimer) unpin(e uint64) { r.active[e&1].Add(-1) }

// retire schedules slot for reuse. The slot must already be unreachable for new readers.
func (r *reclaimer) retire(slot uint32) {
	r.mu.Lock()
	r.retired = append(r.retired, retiredSlot{slot, r.epoch.Load()})
	r.pending.Add(1)
	r.mu.Unlock()
}

// collect advances the epoch if it can and hands slots nobody can read any more to a.
func (r *reclaimer) collect(a *arena) {
	r.mu.Lock()
	if len(r.retired) == 0 {
		r.mu.Unlock()
		return
	}
	e := r.epoch.Load()
	if r.active[(e+1)&1].Load() == 0 {
		// Nobody is pinned in epoch e-1 any more.
		e++
		r.epoch.Store(e)
	}
	var done []uint32
	keep := r.retired[:0]
	for _, s := range r.retired {
		if s.epoch+2 <= e {
			done = append(done, s.slot)
		} else {
			keep = append(keep, s)
		}
	}
	r.retired = keep
	r.pending.Add(-int64(len(done)))
	r.mu.Unlock()
	if len(done) > 0 {
		a.release(done)
	}
}
