package ann

import "sync"

// Flat is an exact index: every search scores every stored vector. It is the ground truth in
// tests and the right index for small catalogs (a few thousand items), where it is as fast as
// a graph and needs no tuning.
//
// Flat is safe for concurrent use. Searches share a read lock; Upsert and Delete take the write
// lock, so a writer waits for the searches in flight.
type Flat struct {
	dim    int
	metric Metric

	mu   sync.RWMutex
	vecs []float32 // row id at vecs[id*dim:]; guarded by mu
	live []bool    // guarded by mu
	n    int       // number of live ids; guarded by mu

	pool sync.Pool // *flatScratch
}

type flatScratch struct {
	q   []float32
	res minHeap
}

// NewFlat returns an empty exact index for vectors of dimension dim (dim > 0) ranked by m.
func NewFlat(dim int, m Metric) *Flat {
	if dim <= 0 {
		panic("ann: NewFlat: dim must be positive")
	}
	return &Flat{dim: dim, metric: m}
}

// Upsert implements Index.
func (f *Flat) Upsert(id uint32, vec []float32) error {
	buf := make([]float32, f.dim)
	if err := checkVec(buf, id, vec, f.dim, f.metric); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if int(id) >= len(f.live) {
		n := max(int(id)+1, 2*len(f.live), 64)
		live := make([]bool, n)
		copy(live, f.live)
		vecs := make([]float32, n*f.dim)
		copy(vecs, f.vecs)
		f.live, f.vecs = live, vecs
	}
	copy(f.vecs[int(id)*f.dim:], buf)
	if !f.live[id] {
		f.live[id] = true
		f.n++
	}
	return nil
}

// Delete implements Index.
func (f *Flat) Delete(id uint32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if int(id) < len(f.live) && f.live[id] {
		f.live[id] = false
		f.n--
	}
}

// Search implements Index. It is exact: it scores every stored id that filt allows.
func (f *Flat) Search(q []float32, k int, filt Filter, dst []Result) []Result {
	s, _ := f.pool.Get().(*flatScratch)
	if s == nil {
		s = &flatScratch{q: make([]float32, f.dim)}
	}
	defer f.pool.Put(s)
	q, ok := prepareQuery(s.q, q, f.dim, f.metric)
	if !ok || k <= 0 {
		return dst[:0]
	}
	s.res = s.res[:0]
	f.mu.RLock()
	dim := f.dim
	for id, live := range f.live {
		if !live || (filt != nil && !filt.Allow(uint32(id))) {
			continue
		}
		sc := dot(q, f.vecs[id*dim:(id+1)*dim])
		s.res.offer(cand{uint32(id), sc}, k)
	}
	f.mu.RUnlock()
	return s.res.drainTo(dst, k)
}

// Len implements Index.
func (f *Flat) Len() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.n
}

// Dim implements Index.
func (f *Flat) Dim() int { return f.dim }

// Metric implements Index.
func (f *Flat) Metric() Metric { return f.metric }

// Stats returns the size of the index. It is safe for concurrent use.
func (f *Flat) Stats() Stats {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return Stats{Live: f.n, Bytes: int64(cap(f.vecs))*4 + int64(cap(f.live))}
}
