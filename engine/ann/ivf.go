package ann

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
)

// IVFConfig tunes an IVF index. Zero fields get the defaults described on each field.
type IVFConfig struct {
	// Lists is the number of k-means lists. Default: round(√n) for the n vectors stored when
	// the index trains, at least 1.
	Lists int
	// Nprobe is the number of lists Search scans. Default: max(1, Lists/16) rounded up.
	Nprobe int
	// TrainSize is the number of stored vectors at which the index trains itself, inside the
	// Upsert that reaches it. Default 32768. Call Train to train earlier or again.
	TrainSize int
	// Iters is the number of Lloyd iterations after k-means++ seeding. Default 10.
	Iters int
	// SamplePerList caps the training sample at SamplePerList·Lists vectors. Default 64.
	SamplePerList int
	// Seed makes training reproducible. Default 1.
	Seed uint64
}

// IVF is an IVF-flat index: k-means centroids partition the vectors into lists, and a search
// scans the vectors of the nprobe lists whose centroids score best against the query.
//
// Until it is trained (see IVFConfig.TrainSize and Train) an IVF holds a single list and
// searches it exactly. Vectors inserted after training go to the list of their nearest
// centroid; the centroids stay as trained until Train is called again.
//
// IVF is safe for concurrent use. Searches share a read lock. Writers are serialised by a
// writer mutex and take the write lock only to change a list; training holds the writer mutex
// (Upsert and Delete wait) but only briefly the write lock, so searches continue meanwhile.
type IVF struct {
	dim    int
	metric Metric
	cfg    IVFConfig

	wmu sync.Mutex // serialises writers and training

	mu        sync.RWMutex
	centroids []float32 // Lists rows, or nil while untrained; replaced, never modified; guarded by mu
	bias      []float32 // per list: -|c|²/2 under Dot, 0 under Cosine; guarded by mu
	lists     []ivfList // guarded by mu
	pos       []ivfPos  // by id; guarded by mu
	n         int       // guarded by mu
	nprobe    int       // guarded by mu
	nprobeSet bool      // SetNprobe was called; guarded by mu

	pool sync.Pool // *ivfScratch
}

type ivfList struct {
	ids  []uint32
	vecs []float32
}

// ivfPos locates an id: list index + 1 (0 = absent) and the row in that list.
type ivfPos struct {
	list int32
	row  int32
}

type ivfScratch struct {
	q     []float32
	order []cand
	res   minHeap
	vec   []float32
}

// NewIVF returns an empty, untrained IVF index for vectors of dimension dim (dim > 0) ranked
// by m.
func NewIVF(dim int, m Metric, cfg IVFConfig) *IVF {
	if dim <= 0 {
		panic("ann: NewIVF: dim must be positive")
	}
	if cfg.TrainSize <= 0 {
		cfg.TrainSize = 32768
	}
	if cfg.Iters <= 0 {
		cfg.Iters = 10
	}
	if cfg.SamplePerList <= 0 {
		cfg.SamplePerList = 64
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	return &IVF{dim: dim, metric: m, cfg: cfg, lists: make([]ivfList, 1), nprobe: 1}
}

// Len implements Index.
func (v *IVF) Len() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.n
}

// Dim implements Index.
func (v *IVF) Dim() int { return v.dim }

// Metric implements Index.
func (v *IVF) Metric() Metric { return v.metric }

// Trained reports whether the index has centroids. It is safe for concurrent use.
func (v *IVF) Trained() bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.centroids != nil
}

// Lists returns the number of lists (1 while untrained). It is safe for concurrent use.
func (v *IVF) Lists() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.lists)
}

// SetNprobe sets the number of lists Search scans (values < 1 are ignored). It is safe for
// concurrent use.
func (v *IVF) SetNprobe(n int) {
	if n < 1 {
		return
	}
	v.mu.Lock()
	v.nprobe, v.nprobeSet = n, true
	v.mu.Unlock()
}

// Stats returns the size of the index. It is safe for concurrent use.
func (v *IVF) Stats() Stats {
	v.mu.RLock()
	defer v.mu.RUnlock()
	b := int64(cap(v.centroids)+cap(v.bias))*4 + int64(cap(v.pos))*8
	for _, l := range v.lists {
		b += int64(cap(l.ids))*4 + int64(cap(l.vecs))*4 + 48
	}
	return Stats{Live: v.n, Bytes: b}
}

// nearestList returns the list for vec. The caller holds wmu or mu.
func (v *IVF) nearestList(vec []float32) int {
	if v.centroids == nil {
		return 0
	}
	best, bestS := 0, float32(math.Inf(-1))
	for c := range v.bias {
		s := dot(vec, v.centroids[c*v.dim:(c+1)*v.dim]) + v.bias[c]
		if s > bestS {
			best, bestS = c, s
		}
	}
	return best
}

// Upsert implements Index. When the number of stored vectors reaches TrainSize for the first
// time, this call also trains the index (seconds for 100k vectors; searches continue).
func (v *IVF) Upsert(id uint32, vec []float32) error {
	buf := make([]float32, v.dim)
	if err := checkVec(buf, id, vec, v.dim, v.metric); err != nil {
		return err
	}
	v.wmu.Lock()
	defer v.wmu.Unlock()
	l := v.nearestList(buf) // centroids change only under wmu
	v.mu.Lock()
	v.remove(id)
	if int(id) >= len(v.pos) {
		v.pos = slices.Grow(v.pos, int(id)+1-len(v.pos))[:max(int(id)+1, len(v.pos))]
	}
	v.add(l, id, buf)
	v.n++
	train := v.centroids == nil && v.n >= v.cfg.TrainSize
	v.mu.Unlock()
	if train {
		v.train()
	}
	return nil
}

// add appends id to list l. The caller holds mu for writing.
func (v *IVF) add(l int, id uint32, vec []float32) {
	L := &v.lists[l]
	v.pos[id] = ivfPos{int32(l + 1), int32(len(L.ids))}
	L.ids = append(L.ids, id)
	L.vecs = append(L.vecs, vec...)
}

// remove deletes id from its list if present (swapping the list's last row into its place)
// and reports whether it was there. The caller holds mu for writing.
func (v *IVF) remove(id uint32) bool {
	if int(id) >= len(v.pos) || v.pos[id].list == 0 {
		return false
	}
	p := v.pos[id]
	L := &v.lists[p.list-1]
	last := len(L.ids) - 1
	if int(p.row) != last {
		moved := L.ids[last]
		L.ids[p.row] = moved
		copy(L.vecs[int(p.row)*v.dim:(int(p.row)+1)*v.dim], L.vecs[last*v.dim:])
		v.pos[moved].row = p.row
	}
	L.ids = L.ids[:last]
	L.vecs = L.vecs[:last*v.dim]
	v.pos[id] = ivfPos{}
	v.n--
	return true
}

// Delete implements Index.
func (v *IVF) Delete(id uint32) {
	v.wmu.Lock()
	defer v.wmu.Unlock()
	v.mu.Lock()
	v.remove(id)
	v.mu.Unlock()
}

// Train runs k-means over the stored vectors (a random sample of SamplePerList·Lists of them)
// and redistributes every stored vector into the new lists. Upsert and Delete wait for it;
// searches continue on the old lists until the new ones are swapped in. Train on an empty
// index does nothing. It is safe for concurrent use.
func (v *IVF) Train() {
	v.wmu.Lock()
	defer v.wmu.Unlock()
	v.train()
}

// train is Train with wmu held. Only writers change the lists and they are locked out, so
// reading them here needs no lock.
func (v *IVF) train() {
	n := v.n
	if n == 0 {
		return
	}
	k := v.cfg.Lists
	if k <= 0 {
		k = max(1, int(math.Round(math.Sqrt(float64(n)))))
	}
	k = min(k, n)
	rng := rand.New(rand.NewPCG(v.cfg.Seed, 0x1f))
	// Gather a uniform sample of rows (reservoir sampling over the lists).
	size := min(n, k*v.cfg.SamplePerList)
	sample := make([]float32, 0, size*v.dim)
	seen := 0
	for _, L := range v.lists {
		for r := range L.ids {
			row := L.vecs[r*v.dim : (r+1)*v.dim]
			if seen < size {
				sample = append(sample, row...)
			} else if j := rng.IntN(seen + 1); j < size {
				copy(sample[j*v.dim:], row)
			}
			seen++
		}
	}
	cent := kmeans(sample, v.dim, k, v.cfg.Iters, rng)
	bias := make([]float32, k)
	for c := range k {
		row := cent[c*v.dim : (c+1)*v.dim]
		if v.metric == Cosine {
			if normalizeInto(row, row, Cosine) != nil {
				row[0] = 1 // an empty direction: any unit vector will do
			}
		} else {
			bias[c] = -dot(row, row) / 2
		}
	}
	// Redistribute.
	nv := &IVF{dim: v.dim, centroids: cent, bias: bias, lists: make([]ivfList, k), pos: make([]ivfPos, len(v.pos))}
	for _, L := range v.lists {
		for r, id := range L.ids {
			row := L.vecs[r*v.dim : (r+1)*v.dim]
			nv.add(nv.nearestList(row), id, row)
		}
	}
	np := v.cfg.Nprobe
	if np <= 0 {
		np = max(1, (k+15)/16)
	}
	v.mu.Lock()
	v.centroids, v.bias, v.lists, v.pos = nv.centroids, nv.bias, nv.lists, nv.pos
	if !v.nprobeSet {
		v.nprobe = np
	}
	v.mu.Unlock()
}

// kmeans returns k centroids of the rows of data (k <= rows): k-means++ seeding, then iters
// Lloyd iterations under squared L2 distance. An emptied cluster is re-seeded with a random row.
func kmeans(data []float32, dim, k, iters int, rng *rand.Rand) []float32 {
	n := len(data) / dim
	row := func(i int) []float32 { return data[i*dim : (i+1)*dim] }
	cent := make([]float32, k*dim)
	// k-means++: each next seed is drawn with probability proportional to its squared
	// distance to the nearest seed so far.
	d2 := make([]float64, n)
	copy(cent, row(rng.IntN(n)))
	for i := range n {
		d2[i] = sqDist(row(i), cent[:dim])
	}
	for c := 1; c < k; c++ {
		var total float64
		for _, d := range d2 {
			total += d
		}
		pick := rng.IntN(n)
		if total > 0 {
			x := rng.Float64() * total
			for i, d := range d2 {
				x -= d
				if x <= 0 {
					pick = i
					break
				}
			}
		}
		seed := cent[c*dim : (c+1)*dim]
		copy(seed, row(pick))
		for i := range n {
			d2[i] = min(d2[i], sqDist(row(i), seed))
		}
	}
	// Lloyd iterations. Nearest centroid by max(x·c - |c|²/2), which is min |x-c|².
	assign := make([]int, n)
	sums := make([]float64, k*dim)
	counts := make([]int, k)
	half := make([]float32, k)
	for range iters {
		for c := range k {
			cr := cent[c*dim : (c+1)*dim]
			half[c] = dot(cr, cr) / 2
		}
		clear(sums)
		clear(counts)
		for i := range n {
			x := row(i)
			best, bestS := 0, float32(math.Inf(-1))
			for c := range k {
				if s := dot(x, cent[c*dim:(c+1)*dim]) - half[c]; s > bestS {
					best, bestS = c, s
				}
			}
			assign[i] = best
			counts[best]++
			sr := sums[best*dim : (best+1)*dim]
			for j, f := range x {
				sr[j] += float64(f)
			}
		}
		for c := range k {
			cr := cent[c*dim : (c+1)*dim]
			if counts[c] == 0 {
				copy(cr, row(rng.IntN(n)))
				continue
			}
			inv := 1 / float64(counts[c])
			for j := range cr {
				cr[j] = float32(sums[c*dim+j] * inv)
			}
		}
	}
	return cent
}

func sqDist(a, b []float32) float64 {
	var s float32
	for i := range a {
		d := a[i] - b[i]
		s += d * d
	}
	return float64(s)
}

// Search implements Index with the configured nprobe (SetNprobe).
func (v *IVF) Search(q []float32, k int, f Filter, dst []Result) []Result {
	return v.SearchNprobe(q, k, 0, f, dst)
}

// SearchNprobe is Search scanning nprobe lists (nprobe <= 0 means the configured number).
// The lists are scanned in order of their centroid's score, and beyond nprobe lists while
// fewer than k hits were found.
//
// With a filter, rejected ids are skipped, and the search keeps scanning lists in that order
// until it has seen as many allowed vectors as an unfiltered search would have scanned
// (nprobe times the mean list length) and at least k, or has scanned every list. A filter that
// allows a fraction p of the ids thus makes the search scan about 1/p times more lists, which
// keeps recall near the unfiltered one.
func (v *IVF) SearchNprobe(q []float32, k, nprobe int, f Filter, dst []Result) []Result {
	s, _ := v.pool.Get().(*ivfScratch)
	if s == nil {
		s = &ivfScratch{q: make([]float32, v.dim)}
	}
	defer v.pool.Put(s)
	q, ok := prepareQuery(s.q, q, v.dim, v.metric)
	if !ok || k <= 0 {
		return dst[:0]
	}
	s.res = s.res[:0]
	v.mu.RLock()
	defer v.mu.RUnlock()
	if nprobe <= 0 {
		nprobe = v.nprobe
	}
	s.order = s.order[:0]
	for c := range v.lists {
		var sc float32
		if v.centroids != nil {
			sc = dot(q, v.centroids[c*v.dim:(c+1)*v.dim]) + v.bias[c]
		}
		s.order = append(s.order, cand{uint32(c), sc})
	}
	// Sorting a few hundred centroids costs far less than scanning one list.
	slices.SortFunc(s.order, byScoreDesc)
	want := max(k, nprobe*v.n/len(v.lists))
	seen := 0
	for i, c := range s.order {
		if i >= nprobe && len(s.res) >= k && (f == nil || seen >= want) {
			break
		}
		L := &v.lists[c.id]
		for r, id := range L.ids {
			if f != nil && !f.Allow(id) {
				continue
			}
			seen++
			s.res.offer(cand{id, dot(q, L.vecs[r*v.dim:(r+1)*v.dim])}, k)
		}
	}
	return s.res.drainTo(dst, k)
}
