package ann

import (
	"math"
	"slices"
	"sync"
	"sync/atomic"
)

// HNSWConfig tunes an HNSW index. Zero fields get the defaults below, measured on 100k × 64
// clustered vectors and Fashion-MNIST (RATIONALE.md, "Why these HNSW parameters?").
type HNSWConfig struct {
	// M is the number of links a node keeps on the upper layers; layer 0 keeps 2*M.
	// Default 16.
	M int
	// EfConstruction is the beam width used to find a new node's neighbours. Default 200.
	EfConstruction int
	// EfSearch is the default beam width of Search; the beam is never narrower than k.
	// Default 100.
	EfSearch int
	// Seed makes the random layer assignment reproducible. Default 1.
	Seed uint64
}

const (
	defaultM              = 16
	defaultEfConstruction = 200
	defaultEfSearch       = 100
	maxLevel              = 16
	noID                  = ^uint32(0)
	stripes               = 256
)

// HNSW is a hierarchical navigable small world graph (Malkov and Yashunin, 2016) that is
// updated in place while it is searched.
//
// All methods are safe for concurrent use. Searches take no locks: each node's neighbour list
// per layer is an immutable slice behind an atomic pointer that writers replace (copy on
// write), vectors live in chunks that never move, and a replaced vector's memory is reused only
// after the searches that could still read it have finished. Writers lock one id stripe for the
// whole Upsert or Delete and each neighbour's mutex only while they swap its list, so different
// ids are inserted in parallel.
//
// Delete leaves a tombstone: the node keeps routing searches but is never returned. Upsert of a
// stored or deleted id writes the new vector and relinks the node. Tombstones are counted in
// Stats; a catalog that turns over completely should be rebuilt into a fresh index now and then.
type HNSW struct {
	dim     int
	metric  Metric
	m, m0   int
	efc     int
	efs     atomic.Int64
	seed    uint64
	levelMu float64 // 1/ln(M), the level generation factor

	entries table[entry]
	vecs    arena
	rec     reclaimer

	// ep packs the entry point: level<<32 | id, or 0 while the graph is empty (epValid set
	// otherwise). epMu serialises raising it.
	ep   atomic.Uint64
	epMu sync.Mutex

	levelCtr atomic.Uint64
	live     atomic.Int64
	nodes    atomic.Int64
	linkCap  atomic.Int64 // total capacity of neighbour slices, for Stats

	stripe [stripes]sync.Mutex
	pool   sync.Pool // *scratch
}

const epValid = 1 << 63

// entry is the per-id state read on the search path.
type entry struct {
	node atomic.Pointer[node]
	slot atomic.Uint32 // arena slot + 1; 0 while absent
	live atomic.Bool
}

// node holds one id's neighbour lists, one per layer from 0 to level. The lists slice itself is
// fixed when the node is created; each element is replaced, never modified.
type node struct {
	mu    sync.Mutex // serialises replacing lists
	level int
	lists []atomic.Pointer[[]uint32]
}

// scratch is the per-search state, pooled so that a search allocates nothing.
type scratch struct {
	marks []uint32 // marks[id] == gen means visited
	gen   uint32
	cand  maxHeap
	res   minHeap
	q     []float32
	buf   []cand
	ids   []uint32 // neighbours chosen for the node being linked
	ids2  []uint32 // lists pruned by addLink
	eps   []cand
}

// NewHNSW returns an empty HNSW index for vectors of dimension dim (dim > 0) ranked by m.
func NewHNSW(dim int, m Metric, cfg HNSWConfig) *HNSW {
	if dim <= 0 {
		panic("ann: NewHNSW: dim must be positive")
	}
	if cfg.M <= 1 {
		cfg.M = defaultM
	}
	if cfg.EfConstruction <= 0 {
		cfg.EfConstruction = defaultEfConstruction
	}
	if cfg.EfSearch <= 0 {
		cfg.EfSearch = defaultEfSearch
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	h := &HNSW{
		dim:     dim,
		metric:  m,
		m:       cfg.M,
		m0:      2 * cfg.M,
		efc:     max(cfg.EfConstruction, cfg.M),
		seed:    cfg.Seed,
		levelMu: 1 / math.Log(float64(cfg.M)),
	}
	h.vecs.dim = dim
	h.efs.Store(int64(cfg.EfSearch))
	return h
}

// SetEfSearch sets the default beam width of Search (values < 1 are ignored). It is safe for
// concurrent use; searches already running keep the old width.
func (h *HNSW) SetEfSearch(ef int) {
	if ef >= 1 {
		h.efs.Store(int64(ef))
	}
}

// EfSearch returns the default beam width of Search.
func (h *HNSW) EfSearch() int { return int(h.efs.Load()) }

// Len implements Index.
func (h *HNSW) Len() int { return int(h.live.Load()) }

// Dim implements Index.
func (h *HNSW) Dim() int { return h.dim }

// Metric implements Index.
func (h *HNSW) Metric() Metric { return h.metric }

// Stats returns the size of the index. It is safe for concurrent use.
func (h *HNSW) Stats() Stats {
	nodes := h.nodes.Load()
	live := h.live.Load()
	const nodeOverhead = 64 + 8 + 24 // node struct, list pointer, slice header per layer 0
	b := h.vecs.bytes() + int64(h.entries.size())*16 + h.linkCap.Load()*4 + nodes*nodeOverhead
	return Stats{Live: int(live), Deleted: int(nodes - live), Bytes: b}
}

// score returns the similarity of q to the stored vector of e, which must have one.
func (h *HNSW) vec(e *entry) []float32 { return h.vecs.row(e.slot.Load() - 1) }

func (h *HNSW) getScratch() *scratch {
	s, _ := h.pool.Get().(*scratch)
	if s == nil {
		s = &scratch{q: make([]float32, h.dim)}
	}
	if n := h.entries.size(); len(s.marks) < n {
		s.marks = make([]uint32, n)
		s.gen = 0
	}
	return s
}

func (h *HNSW) putScratch(s *scratch) { h.pool.Put(s) }

// reset starts a new visited generation and empties the heaps.
func (s *scratch) reset() {
	s.gen++
	if s.gen == 0 {
		clear(s.marks)
		s.gen = 1
	}
	s.cand = s.cand[:0]
	s.res = s.res[:0]
}

// visit marks id and reports whether it was already marked in this generation.
func (s *scratch) visit(id uint32) bool {
	if int(id) >= len(s.marks) {
		// The index grew during this search.
		m := make([]uint32, max(int(id)+1, 2*len(s.marks)))
		copy(m, s.marks)
		s.marks = m
	}
	if s.marks[id] == s.gen {
		return true
	}
	s.marks[id] = s.gen
	return false
}

// randomLevel draws a layer with P(level >= l) = M^-l from a counter-based generator.
func (h *HNSW) randomLevel() int {
	x := splitmix(h.seed + h.levelCtr.Add(1)*0x9e3779b97f4a7c15)
	u := (float64(x>>11) + 1) / (1 << 53) // in (0, 1]
	return min(int(-math.Log(u)*h.levelMu), maxLevel)
}

func splitmix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// Upsert implements Index. A new id gets a random level and is linked like in the HNSW paper's
// Algorithm 1; a stored or deleted id keeps its level, gets the new vector and new neighbour
// lists on every layer, and is linked back from its new neighbours.
func (h *HNSW) Upsert(id uint32, vec []float32) error {
	if id > MaxID {
		return checkVec(nil, id, vec, h.dim, h.metric)
	}
	if len(vec) != h.dim {
		return checkVec(nil, id, vec, h.dim, h.metric)
	}
	mu := &h.stripe[id%stripes]
	mu.Lock()
	defer mu.Unlock()

	epoch := h.rec.pin()
	slot, row := h.vecs.alloc()
	if err := checkVec(row, id, vec, h.dim, h.metric); err != nil {
		h.rec.unpin(epoch)
		h.vecs.release([]uint32{slot})
		return err
	}
	e := h.entries.ensure(id)
	n := e.node.Load()
	old := e.slot.Swap(slot + 1)
	if n == nil {
		n = &node{level: h.randomLevel()}
		n.lists = make([]atomic.Pointer[[]uint32], n.level+1)
		for l := range n.lists {
			empty := make([]uint32, 0, h.maxLinks(l))
			n.lists[l].Store(&empty)
			h.linkCap.Add(int64(cap(empty)))
		}
		e.node.Store(n)
		h.nodes.Add(1)
		e.live.Store(true)
		h.live.Add(1)
		h.link(id, n, row, false)
	} else {
		h.link(id, n, row, true)
		if !e.live.Swap(true) {
			h.live.Add(1)
		}
	}
	h.rec.unpin(epoch)
	if old != 0 {
		h.rec.retire(old - 1)
		h.rec.collect(&h.vecs)
	}
	return nil
}

// Delete implements Index. The node stays in the graph as a tombstone that searches route
// through but never return.
func (h *HNSW) Delete(id uint32) {
	e := h.entries.get(id)
	if e == nil {
		return
	}
	mu := &h.stripe[id%stripes]
	mu.Lock()
	if e.live.Swap(false) {
		h.live.Add(-1)
	}
	mu.Unlock()
}

func (h *HNSW) maxLinks(level int) int {
	if level == 0 {
		return h.m0
	}
	return h.m
}

// link connects node id (vector q) to the graph. relink replaces its lists instead of merging
// with links that concurrent inserts may already have added to a new node.
func (h *HNSW) link(id uint32, n *node, q []float32, relink bool) {
	var ep uint64
	for {
		ep = h.ep.Load()
		if ep != 0 {
			break
		}
		h.epMu.Lock()
		if h.ep.Load() == 0 {
			h.ep.Store(epValid | uint64(n.level)<<32 | uint64(id))
			h.epMu.Unlock()
			return
		}
		h.epMu.Unlock()
	}
	epID := uint32(ep)
	epLevel := int(ep>>32) & 0xff

	s := h.getScratch()
	defer h.putScratch(s)

	cur := cand{epID, dot(q, h.vec(h.entries.get(epID)))}
	for l := epLevel; l > n.level; l-- {
		cur = h.greedy(q, cur, l)
	}
	s.eps = append(s.eps[:0], cur)
	for l := min(n.level, epLevel); l >= 0; l-- {
		s.reset()
		for _, c := range s.eps {
			s.visit(c.id)
			s.cand.push(c)
			if c.id != id {
				s.res.push(c)
			}
		}
		h.searchLayer(s, q, l, h.efc, nil, id, false, math.MaxInt)
		// Candidates, best first.
		s.buf = append(s.buf[:0], s.res...)
		slices.SortFunc(s.buf, byScoreDesc)
		if len(s.buf) > 0 {
			s.eps = append(s.eps[:0], s.buf...)
		}
		maxM := h.maxLinks(l)
		if !relink {
			// Concurrent inserts may already have linked to this new node: keep those too.
			n.mu.Lock()
			for _, nb := range *n.lists[l].Load() {
				if !slices.ContainsFunc(s.buf, func(c cand) bool { return c.id == nb }) {
					s.buf = append(s.buf, cand{nb, dot(q, h.vec(h.entries.get(nb)))})
				}
			}
			slices.SortFunc(s.buf, byScoreDesc)
			sel := h.selectNeighbors(s.buf, h.m, s.ids[:0])
			h.storeList(n, l, sel, maxM)
			s.ids = sel
			n.mu.Unlock()
		} else {
			sel := h.selectNeighbors(s.buf, h.m, s.ids[:0])
			n.mu.Lock()
			h.storeList(n, l, sel, maxM)
			n.mu.Unlock()
			s.ids = sel
		}
		for _, nb := range s.ids {
			h.addLink(s, nb, id, q, l)
		}
	}
	if n.level > epLevel {
		h.epMu.Lock()
		if cur := h.ep.Load(); n.level > int(cur>>32)&0xff {
			h.ep.Store(epValid | uint64(n.level)<<32 | uint64(id))
		}
		h.epMu.Unlock()
	}
}

func byScoreDesc(a, b cand) int {
	switch {
	case a.score > b.score:
		return -1
	case a.score < b.score:
		return 1
	}
	return 0
}

// storeList publishes a copy of ids as n's list on layer l. The caller holds n.mu.
func (h *HNSW) storeList(n *node, l int, ids []uint32, capacity int) {
	old := n.lists[l].Load()
	nl := make([]uint32, len(ids), max(capacity, len(ids)))
	copy(nl, ids)
	n.lists[l].Store(&nl)
	h.linkCap.Add(int64(cap(nl) - cap(*old)))
}

// selectNeighbors is the HNSW paper's Algorithm 4 without extension: it walks cands (sorted by
// score to the base vector, best first) and keeps a candidate only if it is closer to the base
// than to every neighbour already kept, up to m. Dropping candidates that are "behind" a kept
// neighbour spreads the links over directions, which keeps clusters connected to each other.
func (h *HNSW) selectNeighbors(cands []cand, m int, out []uint32) []uint32 {
	out = out[:0]
	for _, c := range cands {
		if len(out) >= m {
			break
		}
		vc := h.vec(h.entries.get(c.id))
		keep := true
		for _, r := range out {
			if dot(vc, h.vec(h.entries.get(r))) > c.score {
				keep = false
				break
			}
		}
		if keep {
			out = append(out, c.id)
		}
	}
	return out
}

// addLink adds id (vector q) to nb's list on layer l, pruning the list with the heuristic when
// it is full.
func (h *HNSW) addLink(s *scratch, nb, id uint32, q []float32, l int) {
	ne := h.entries.get(nb)
	nn := ne.node.Load()
	if nn == nil || nn.level < l {
		return
	}
	maxM := h.maxLinks(l)
	nn.mu.Lock()
	defer nn.mu.Unlock()
	cur := *nn.lists[l].Load()
	if slices.Contains(cur, id) {
		return
	}
	if len(cur) < maxM {
		// Readers hold slices of length len(cur) at most, so writing past it is invisible to
		// them until the new header is published.
		nl := append(cur, id)
		nn.lists[l].Store(&nl)
		return
	}
	base := h.vec(ne)
	s.buf = s.buf[:0]
	s.buf = append(s.buf, cand{id, dot(base, q)})
	for _, c := range cur {
		if c == nb {
			continue
		}
		s.buf = append(s.buf, cand{c, dot(base, h.vec(h.entries.get(c)))})
	}
	slices.SortFunc(s.buf, byScoreDesc)
	s.ids2 = h.selectNeighbors(s.buf, maxM, s.ids2[:0])
	h.storeList(nn, l, s.ids2, maxM)
}

// greedy walks layer l from cur to a local maximum of the score (ef = 1).
func (h *HNSW) greedy(q []float32, cur cand, l int) cand {
	for changed := true; changed; {
		changed = false
		n := h.entries.get(cur.id).node.Load()
		if n.level < l {
			return cur
		}
		for _, nb := range *n.lists[l].Load() {
			sc := dot(q, h.vec(h.entries.get(nb)))
			if sc > cur.score {
				cur = cand{nb, sc}
				changed = true
			}
		}
	}
	return cur
}

// searchLayer is the HNSW paper's Algorithm 2 on layer l, starting from the candidates and
// results already in s. It expands the best candidate until the best remaining one is worse
// than the worst of ef results. Every reached node is traversed; only nodes that are live
// (unless withDeleted), not skip and allowed by f are collected into s.res. While fewer than
// ef nodes are collected the search keeps expanding (a selective filter widens it), but stops
// after hungry visits. It returns the number of nodes scored.
func (h *HNSW) searchLayer(s *scratch, q []float32, l, ef int, f Filter, skip uint32, liveOnly bool, hungry int) int {
	visits := 0
	for len(s.cand) > 0 {
		full := len(s.res) >= ef
		if full && s.cand[0].score < s.res[0].score {
			break
		}
		if !full && visits >= hungry {
			break
		}
		c := s.cand.pop()
		n := h.entries.get(c.id).node.Load()
		if n.level < l {
			continue
		}
		for _, nb := range *n.lists[l].Load() {
			if s.visit(nb) {
				continue
			}
			e := h.entries.get(nb)
			sc := dot(q, h.vec(e))
			visits++
			if len(s.res) < ef || sc > s.res[0].score {
				s.cand.push(cand{nb, sc})
				if nb != skip && (!liveOnly || e.live.Load()) && (f == nil || f.Allow(nb)) {
					s.res.offer(cand{nb, sc}, ef)
				}
			}
		}
	}
	return visits
}

// Search implements Index with the default beam width (SetEfSearch).
func (h *HNSW) Search(q []float32, k int, f Filter, dst []Result) []Result {
	return h.SearchEf(q, k, 0, f, dst)
}

// SearchEf is Search with beam width ef (ef <= 0 means the default; the beam is never narrower
// than k). Wider beams cost time and raise recall.
//
// With a filter, rejected nodes are traversed but not collected, and the beam keeps expanding
// until it holds ef allowed nodes, so its effective width grows by about one over the fraction
// of nodes the filter allows. That widening is capped: after max(32·ef, Len/10) scored nodes
// without ef allowed ones the graph search stops, and if it has found fewer than k allowed ids
// while more live ids exist, SearchEf scans every stored id exactly instead (a filter this
// selective allows so few ids that scoring only them costs less than walking the graph). The
// same exact scan answers when deletions cut the reachable graph short of k.
func (h *HNSW) SearchEf(q []float32, k, ef int, f Filter, dst []Result) []Result {
	if k <= 0 {
		return dst[:0]
	}
	s := h.getScratch()
	defer h.putScratch(s)
	q, ok := prepareQuery(s.q, q, h.dim, h.metric)
	if !ok {
		return dst[:0]
	}
	if ef <= 0 {
		ef = int(h.efs.Load())
	}
	ef = max(ef, k)
	epoch := h.rec.pin()
	defer h.rec.unpin(epoch)

	ep := h.ep.Load()
	if ep == 0 {
		return dst[:0]
	}
	epID := uint32(ep)
	cur := cand{epID, dot(q, h.vec(h.entries.get(epID)))}
	for l := int(ep>>32) & 0xff; l > 0; l-- {
		cur = h.greedy(q, cur, l)
	}
	s.reset()
	s.visit(cur.id)
	s.cand.push(cur)
	if e := h.entries.get(cur.id); e.live.Load() && (f == nil || f.Allow(cur.id)) {
		s.res.push(cur)
	}
	live := int(h.live.Load())
	hungry := max(32*ef, live/10)
	h.searchLayer(s, q, 0, ef, f, noID, true, hungry)
	if len(s.res) < k && len(s.res) < live {
		h.scan(s, q, k, f)
	}
	return s.res.drainTo(dst, k)
}

// scan replaces s.res with the exact top k over every live id allowed by f.
func (h *HNSW) scan(s *scratch, q []float32, k int, f Filter) {
	s.res = s.res[:0]
	d := h.entries.dir.Load()
	if d == nil {
		return
	}
	for ci, c := range *d {
		for i := range c {
			e := &c[i]
			if !e.live.Load() {
				continue
			}
			id := uint32(ci<<chunkBits | i)
			if f != nil && !f.Allow(id) {
				continue
			}
			s.res.offer(cand{id, dot(q, h.vec(e))}, k)
		}
	}
}
