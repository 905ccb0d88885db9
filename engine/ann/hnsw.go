package ann

import (
	"math"
	"runtime"
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
	// Default 64 (so k >= 64 searches with a beam of k).
	EfSearch int
	// Seed makes the random layer assignment reproducible. Default 1.
	Seed uint64
	// CompactAt is the share of tombstones, Deleted / (Live + Deleted), above which a Delete
	// starts a background Compact. Default 0.25; a negative value turns automatic compaction
	// off (Compact can still be called). See RATIONALE.md, "Why compaction repairs the graph in
	// place?".
	CompactAt float64
}

const (
	defaultM              = 16
	defaultEfConstruction = 200
	defaultEfSearch       = 64
	defaultCompactAt      = 0.25
	maxLevel              = 16
	noID                  = ^uint32(0)
	stripes               = 256
)

// HNSW is a hierarchical navigable small world graph (Malkov and Yashunin, 2016) that is
// updated in place while it is searched.
//
// All methods are safe for concurrent use, and searches take no locks:
//   - vectors live in chunks that never move; a replaced vector's memory is reused only after
//     every search that could still read it has finished (epoch-based reclamation);
//   - layer-0 neighbour lists (the ones searches read most) are fixed-size rows of atomic
//     words, a count then the ids, rewritten in place by writers. A search racing a writer may
//     read a mix of the old and new list, which is harmless: every word is always a valid id;
//   - upper-layer lists are immutable slices behind atomic pointers that writers replace (copy
//     on write).
//
// Writers lock one id stripe for the whole Upsert or Delete and a neighbour's list stripe only
// while they change that list, never two list stripes at once, so different ids are inserted in
// parallel and cannot deadlock.
//
// Delete leaves a tombstone: the node keeps routing searches but is never returned. Upsert of a
// stored or deleted id writes the new vector and relinks the node. Tombstones are counted in
// Stats and removed by Compact, which unlinks them, reconnects their neighbours and frees their
// memory; it runs in the background once the tombstones pass HNSWConfig.CompactAt.
type HNSW struct {
	dim     int
	metric  Metric
	m, m0   int
	stride  int // words per layer-0 row: count + m0 ids
	efc     int
	efs     atomic.Int64
	seed    uint64
	levelMu float64 // 1/ln(M), the level generation factor

	dir   atomic.Pointer[[]*hchunk] // grows by appending chunks; chunks never move
	dirMu sync.Mutex
	vecs  arena
	rec   reclaimer

	// ep packs the entry point: epValid | level<<32 | id, or 0 while the graph is empty.
	// epMu serialises setting and raising it.
	ep   atomic.Uint64
	epMu sync.Mutex

	noEstimate bool // tests set it to exercise the filtered graph search on small indexes

	compactAt   float64                  // CompactAt; <= 0 means never automatically
	compactMu   sync.Mutex               // one Compact at a time
	compacting  atomic.Bool              // a background Compact is queued or running
	bg          sync.WaitGroup           // background compactions, for tests
	gate        sync.RWMutex             // Upsert holds it shared; Compact takes it to drain older Upserts
	dying       atomic.Pointer[[]uint64] // the tombstones a running Compact removes, or nil
	compactions atomic.Int64
	reclaimed   atomic.Int64

	levelCtr atomic.Uint64
	live     atomic.Int64
	nodes    atomic.Int64
	upperCap atomic.Int64 // words in upper-layer lists, for Stats
	uppers   atomic.Int64 // nodes above layer 0, for Stats

	opMu   [stripes]sync.Mutex     // per id stripe: one Upsert or Delete at a time
	listMu [4 * stripes]sync.Mutex // per id stripe: one writer of a node's lists at a time
	// free keeps scratch states between operations. Unlike a sync.Pool it survives garbage
	// collections, which matters because a scratch holds a visited array of 4 bytes per id.
	free chan *scratch
}

const epValid = 1 << 63

// hchunk holds the per-id state of chunkSize consecutive ids.
type hchunk struct {
	slot  [chunkSize]atomic.Uint32        // arena slot + 1; 0 if the id was never stored
	live  [chunkSize]atomic.Bool          // stored and not deleted
	upper [chunkSize]atomic.Pointer[node] // nil for nodes on layer 0 only
	links []atomic.Uint32                 // layer 0: per id, a count then m0 ids
}

// node holds the lists of a node on layers 1..level (index l-1). The slice is fixed when the
// node is created; each element is replaced, never modified below its published length.
type node struct {
	level int
	lists []atomic.Pointer[[]uint32]
}

// scratch is the per-operation state, pooled so that a search allocates nothing.
type scratch struct {
	marks []uint32 // marks[id] == gen means visited
	gen   uint32
	cand  maxHeap
	res   minHeap
	q     []float32
	buf   []cand
	nbuf  []uint32 // a layer-0 list being expanded
	nbuf2 []uint32 // a layer-0 list being changed by addLink
	ids   []uint32 // neighbours chosen for the node being linked
	ids2  []uint32 // a list pruned by addLink
	hop   []uint32 // a tombstone's list walked by repair
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
	if cfg.CompactAt == 0 {
		cfg.CompactAt = defaultCompactAt
	}
	h := &HNSW{
		dim:       dim,
		metric:    m,
		m:         cfg.M,
		m0:        2 * cfg.M,
		stride:    2*cfg.M + 1,
		efc:       max(cfg.EfConstruction, cfg.M),
		seed:      cfg.Seed,
		levelMu:   1 / math.Log(float64(cfg.M)),
		compactAt: cfg.CompactAt,
	}
	h.vecs.dim = dim
	h.free = make(chan *scratch, 2*runtime.GOMAXPROCS(0)+2)
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
	var chunks int64
	if d := h.dir.Load(); d != nil {
		for _, c := range *d {
			if c != nil {
				chunks++
			}
		}
	}
	perID := int64(4+1+8) + int64(h.stride)*4
	const nodeBytes = 32 + 8 + 24 // node struct, list pointer and slice header
	b := h.vecs.bytes() + chunks*chunkSize*perID + h.upperCap.Load()*4 + h.uppers.Load()*nodeBytes
	return Stats{Live: int(live), Deleted: int(nodes - live), Bytes: b,
		Compactions: h.compactions.Load(), Reclaimed: h.reclaimed.Load()}
}

// chunk returns the chunk holding id, or nil if the index has not grown that far or Compact
// freed the chunk (every id in it was reclaimed).
func (h *HNSW) chunk(id uint32) *hchunk {
	d := h.dir.Load()
	if d == nil || int(id>>chunkBits) >= len(*d) {
		return nil
	}
	return (*d)[id>>chunkBits]
}

// ensureChunk returns the chunk holding id, growing the index if needed.
func (h *HNSW) ensureChunk(id uint32) *hchunk {
	if c := h.chunk(id); c != nil {
		return c
	}
	h.dirMu.Lock()
	defer h.dirMu.Unlock()
	var old []*hchunk
	if d := h.dir.Load(); d != nil {
		old = *d
	}
	ci := int(id >> chunkBits)
	if ci < len(old) && old[ci] != nil {
		return old[ci]
	}
	nd := make([]*hchunk, max(ci+1, len(old)))
	copy(nd, old)
	for j := len(old); j < ci; j++ {
		nd[j] = &hchunk{links: make([]atomic.Uint32, chunkSize*h.stride)}
	}
	nd[ci] = &hchunk{links: make([]atomic.Uint32, chunkSize*h.stride)}
	h.dir.Store(&nd)
	return nd[ci]
}

// size returns the number of ids the chunks cover.
func (h *HNSW) size() int {
	d := h.dir.Load()
	if d == nil {
		return 0
	}
	return len(*d) * chunkSize
}

// vec returns the vector of a stored id that Compact cannot reclaim meanwhile.
func (h *HNSW) vec(id uint32) []float32 {
	return h.vecs.row(h.chunk(id).slot[id&chunkMask].Load() - 1)
}

// vecOK returns the vector of id, or false if id is not stored (never was, or Compact reclaimed
// it after the caller read a link to it). The row stays valid while the caller is pinned.
func (h *HNSW) vecOK(id uint32) ([]float32, bool) {
	c := h.chunk(id)
	if c == nil {
		return nil, false
	}
	slot := c.slot[id&chunkMask].Load()
	if slot == 0 {
		return nil, false
	}
	return h.vecs.row(slot - 1), true
}

// levelOf returns the top layer of a stored id (0 for an id not stored).
func (h *HNSW) levelOf(id uint32) int {
	c := h.chunk(id)
	if c == nil {
		return 0
	}
	if nd := c.upper[id&chunkMask].Load(); nd != nil {
		return nd.level
	}
	return 0
}

// row0 returns the layer-0 row of id in chunk c.
func (h *HNSW) row0(c *hchunk, id uint32) []atomic.Uint32 {
	off := int(id&chunkMask) * h.stride
	return c.links[off : off+h.stride : off+h.stride]
}

// neighbors returns id's list on layer l: for layer 0 a copy in buf, above it the immutable
// published slice (nil if id does not reach layer l).
func (h *HNSW) neighbors(id uint32, l int, buf []uint32) []uint32 {
	c := h.chunk(id)
	if c == nil {
		return buf[:0]
	}
	if l == 0 {
		row := h.row0(c, id)
		n := min(int(row[0].Load()), h.m0)
		buf = buf[:0]
		for j := 1; j <= n; j++ {
			buf = append(buf, row[j].Load())
		}
		return buf
	}
	nd := c.upper[id&chunkMask].Load()
	if nd == nil || nd.level < l {
		return nil
	}
	return *nd.lists[l-1].Load()
}

// setList replaces id's list on layer l with ids. The caller holds id's list stripe.
func (h *HNSW) setList(id uint32, l int, ids []uint32) {
	c := h.chunk(id)
	if l == 0 {
		row := h.row0(c, id)
		for j, x := range ids {
			row[j+1].Store(x)
		}
		row[0].Store(uint32(len(ids)))
		return
	}
	nd := c.upper[id&chunkMask].Load()
	nl := make([]uint32, len(ids), max(h.m, len(ids)))
	copy(nl, ids)
	nd.lists[l-1].Store(&nl)
}

// appendList adds x to id's list on layer l, which has room. The caller holds id's list stripe.
func (h *HNSW) appendList(id uint32, l int, x uint32) {
	c := h.chunk(id)
	if l == 0 {
		row := h.row0(c, id)
		n := row[0].Load()
		row[n+1].Store(x)
		row[0].Store(n + 1)
		return
	}
	p := &c.upper[id&chunkMask].Load().lists[l-1]
	// Readers hold slices no longer than the current one, so writing past its end (within
	// capacity) is invisible to them until the longer header is published.
	nl := append(*p.Load(), x)
	p.Store(&nl)
}

func (h *HNSW) listLock(id uint32) *sync.Mutex { return &h.listMu[id%uint32(len(h.listMu))] }

func (h *HNSW) getScratch() *scratch {
	var s *scratch
	select {
	case s = <-h.free:
	default:
		s = &scratch{q: make([]float32, h.dim), nbuf: make([]uint32, 0, h.m0), nbuf2: make([]uint32, 0, h.m0)}
	}
	if n := h.size(); len(s.marks) < n {
		s.marks = make([]uint32, n)
		s.gen = 0
	}
	return s
}

func (h *HNSW) putScratch(s *scratch) {
	select {
	case h.free <- s:
	default: // enough are kept; let this one go
	}
}

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
	if id > MaxID || len(vec) != h.dim {
		return checkVec(nil, id, vec, h.dim, h.metric)
	}
	h.gate.RLock()
	defer h.gate.RUnlock()
	mu := &h.opMu[id%stripes]
	mu.Lock()
	defer mu.Unlock()

	epoch := h.rec.pin()
	slot, row := h.vecs.alloc()
	if err := checkVec(row, id, vec, h.dim, h.metric); err != nil {
		h.rec.unpin(epoch)
		h.vecs.release([]uint32{slot})
		return err
	}
	c := h.ensureChunk(id)
	i := id & chunkMask
	old := c.slot[i].Swap(slot + 1)
	if old == 0 {
		level := h.randomLevel()
		if level > 0 {
			nd := &node{level: level, lists: make([]atomic.Pointer[[]uint32], level)}
			for l := range nd.lists {
				empty := make([]uint32, 0, h.m)
				nd.lists[l].Store(&empty)
			}
			c.upper[i].Store(nd)
			h.upperCap.Add(int64(level * h.m))
			h.uppers.Add(1)
		}
		h.nodes.Add(1)
		c.live[i].Store(true)
		h.live.Add(1)
		h.link(id, level, row, false)
	} else {
		// A revived id is live before it is relinked, so that a running Compact keeps the
		// links its relink adds (see compact.go).
		if !c.live[i].Swap(true) {
			h.live.Add(1)
		}
		h.link(id, h.levelOf(id), row, true)
	}
	h.rec.unpin(epoch)
	if old != 0 {
		h.rec.retire(old - 1)
	}
	if old != 0 || h.rec.pending.Load() > 0 {
		h.rec.collect(&h.vecs)
	}
	return nil
}

// Delete implements Index. The node stays in the graph as a tombstone that searches route
// through but never return.
func (h *HNSW) Delete(id uint32) {
	c := h.chunk(id)
	if c == nil {
		return
	}
	mu := &h.opMu[id%stripes]
	mu.Lock()
	deleted := c.live[id&chunkMask].Swap(false)
	if deleted {
		h.live.Add(-1)
	}
	mu.Unlock()
	if deleted {
		h.maybeCompact()
	}
}

func (h *HNSW) maxLinks(level int) int {
	if level == 0 {
		return h.m0
	}
	return h.m
}

// link connects id (vector q, top layer level) to the graph. relink replaces its lists;
// otherwise links that concurrent inserts already added to the new node are kept as candidates.
func (h *HNSW) link(id uint32, level int, q []float32, relink bool) {
	var ep uint64
	for {
		ep = h.ep.Load()
		if ep != 0 {
			break
		}
		h.epMu.Lock()
		if h.ep.Load() == 0 {
			h.ep.Store(epValid | uint64(level)<<32 | uint64(id))
			h.epMu.Unlock()
			return
		}
		h.epMu.Unlock()
	}
	s := h.getScratch()
	defer h.putScratch(s)

	cur, epLevel, ok := h.entry(q)
	if !ok {
		// Compact reclaimed every other node after this Upsert's id was stored; the loop
		// above found the graph non-empty, so only a concurrent Compact can get here.
		h.epMu.Lock()
		if h.ep.Load() == 0 {
			h.ep.Store(epValid | uint64(level)<<32 | uint64(id))
		}
		h.epMu.Unlock()
		return
	}
	dying := h.dying.Load()
	for l := epLevel; l > level; l-- {
		cur = h.greedy(q, cur, l)
	}
	s.eps = append(s.eps[:0], cur)
	for l := min(level, epLevel); l >= 0; l-- {
		s.reset()
		for _, c := range s.eps {
			s.visit(c.id)
			s.cand.push(c)
			// The greedy descent may end on a tombstone a running Compact removes: route
			// through it, but do not link to it (the rule searchLayer applies).
			if c.id != id && (dying == nil || !h.isDead(*dying, c.id)) {
				s.res.push(c)
			}
		}
		h.searchLayer(s, q, l, h.efc, nil, id, false, dying, math.MaxInt)
		// Candidates, best first; they are the entry points of the next layer down.
		s.buf = append(s.buf[:0], s.res...)
		slices.SortFunc(s.buf, byScoreDesc)
		if len(s.buf) > 0 {
			s.eps = append(s.eps[:0], s.buf...)
		}
		lm := h.listLock(id)
		lm.Lock()
		if !relink {
			// Concurrent inserts may already have linked to this new node: keep those too.
			for _, nb := range h.neighbors(id, l, s.nbuf) {
				if !slices.ContainsFunc(s.buf, func(c cand) bool { return c.id == nb }) {
					if v, ok := h.vecOK(nb); ok {
						s.buf = append(s.buf, cand{nb, dot(q, v)})
					}
				}
			}
			slices.SortFunc(s.buf, byScoreDesc)
		}
		s.ids = h.selectNeighbors(q, s.buf, h.m, s.ids[:0])
		h.setList(id, l, s.ids)
		lm.Unlock()
		for _, nb := range s.ids {
			h.addLink(s, nb, id, q, l)
		}
	}
	if level > epLevel {
		h.epMu.Lock()
		if cur := h.ep.Load(); level > int(cur>>32)&0xff {
			h.ep.Store(epValid | uint64(level)<<32 | uint64(id))
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

// selectNeighbors is the HNSW paper's Algorithm 4 without extension: it walks cands (sorted by
// score to base, best first) and keeps a candidate only if it is closer to the base
// than to every neighbour already kept, up to m. Dropping candidates that are "behind" a kept
// neighbour spreads the links over directions, which keeps clusters connected to each other.
func (h *HNSW) selectNeighbors(base []float32, cands []cand, m int, out []uint32) []uint32 {
	out = out[:0]
	// Under Dot the vectors have different norms, and "closer" in inner product favours long
	// vectors, which would then block every other candidate. The test runs in L2 instead:
	// |c-r|² < |c-b|²  ⇔  c·r - |r|²/2 > c·b - |b|²/2. Under Cosine the norms are 1 and it
	// reduces to c·r > c·b.
	var halfBase float32
	if h.metric == Dot {
		halfBase = dot(base, base) / 2
	}
	for _, c := range cands {
		if len(out) >= m {
			break
		}
		vc := h.vec(c.id)
		keep := true
		for _, r := range out {
			vr := h.vec(r)
			var halfR float32
			if h.metric == Dot {
				halfR = dot(vr, vr) / 2
			}
			if dot(vc, vr)-halfR > c.score-halfBase {
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
	if h.levelOf(nb) < l {
		return
	}
	maxM := h.maxLinks(l)
	lm := h.listLock(nb)
	lm.Lock()
	defer lm.Unlock()
	cur := h.neighbors(nb, l, s.nbuf2)
	if slices.Contains(cur, id) {
		return
	}
	if len(cur) < maxM {
		h.appendList(nb, l, id)
		return
	}
	base := h.vec(nb)
	s.buf = s.buf[:0]
	s.buf = append(s.buf, cand{id, dot(base, q)})
	for _, c := range cur {
		if v, ok := h.vecOK(c); ok {
			s.buf = append(s.buf, cand{c, dot(base, v)})
		}
	}
	slices.SortFunc(s.buf, byScoreDesc)
	s.ids2 = h.selectNeighbors(base, s.buf, maxM, s.ids2[:0])
	h.setList(nb, l, s.ids2)
}

// greedy walks layer l >= 1 from cur to a local maximum of the score (ef = 1).
func (h *HNSW) greedy(q []float32, cur cand, l int) cand {
	for changed := true; changed; {
		changed = false
		for _, nb := range h.neighbors(cur.id, l, nil) {
			v, ok := h.vecOK(nb)
			if !ok {
				continue // reclaimed by Compact after this list was read
			}
			if sc := dot(q, v); sc > cur.score {
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
// (unless liveOnly is false), not skip, not tombstones in dying and allowed by f are collected
// into s.res. While fewer than ef nodes are collected the search keeps expanding (a selective
// filter widens it), but stops after hungry scored nodes. It returns the number of nodes
// scored.
func (h *HNSW) searchLayer(s *scratch, q []float32, l, ef int, f Filter, skip uint32, liveOnly bool, dying *[]uint64, hungry int) int {
	visits := 0
	d := *h.dir.Load()
	for len(s.cand) > 0 {
		full := len(s.res) >= ef
		if full && s.cand[0].score < s.res[0].score {
			break
		}
		if !full && visits >= hungry {
			break
		}
		c := s.cand.pop()
		for _, nb := range h.neighbors(c.id, l, s.nbuf) {
			if s.visit(nb) {
				continue
			}
			if int(nb>>chunkBits) >= len(d) {
				d = *h.dir.Load() // the index grew during the search
			}
			ch := d[nb>>chunkBits]
			if ch == nil {
				continue // freed by Compact after this list was read
			}
			i := nb & chunkMask
			slot := ch.slot[i].Load()
			if slot == 0 {
				continue // reclaimed by Compact after this list was read
			}
			sc := dot(q, h.vecs.row(slot-1))
			visits++
			if len(s.res) < ef || sc > s.res[0].score {
				s.cand.push(cand{nb, sc})
				if nb != skip && (!liveOnly || ch.live[i].Load()) && (f == nil || f.Allow(nb)) &&
					(dying == nil || ch.live[i].Load() || !inSet(*dying, nb)) { // not h.isDead: ch is at hand
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
// A filter is applied during the search. First SearchEf asks f about up to 64 live ids spread
// over the index to estimate the fraction p it allows. A graph search scores about 8·ef/p
// nodes at random places in memory; an exact scan calls f for each of the Len ids and scores
// only the p·Len allowed ones, in memory order. With the costs measured here (a graph visit ≈
// 3 sequential scores, a filter call ≈ 1/8 of one), SearchEf scans when 24·ef/p > p·Len +
// Len/8: at 100k ids and ef 100 that is when the filter allows fewer than about one id in
// ten. Otherwise it walks the graph: rejected nodes are traversed but not collected, and the
// beam keeps expanding until it holds ef allowed nodes, so its width adapts to the filter.
// That walk is capped at max(32·ef, Len/10) scored nodes while the beam is not full; if it
// ends with fewer than k hits while more live ids exist (a filter rejecting everything near
// the query, or deletions cutting the graph), SearchEf falls back to the exact scan.
func (h *HNSW) SearchEf(q []float32, k, ef int, f Filter, dst []Result) []Result {
	dst, _ = h.searchEf(q, k, ef, f, dst)
	return dst
}

// searchEf is SearchEf that also returns the number of vectors scored on layer 0 (a scan
// counts the live ids), the cost measure the churn benchmarks report.
func (h *HNSW) searchEf(q []float32, k, ef int, f Filter, dst []Result) ([]Result, int) {
	if k <= 0 {
		return dst[:0], 0
	}
	s := h.getScratch()
	defer h.putScratch(s)
	q, ok := prepareQuery(s.q, q, h.dim, h.metric)
	if !ok {
		return dst[:0], 0
	}
	if ef <= 0 {
		ef = int(h.efs.Load())
	}
	ef = max(ef, k)
	epoch := h.rec.pin()
	defer h.rec.unpin(epoch)

	cur, epLevel, ok := h.entry(q)
	if !ok {
		return dst[:0], 0
	}
	for l := epLevel; l > 0; l-- {
		cur = h.greedy(q, cur, l)
	}
	s.reset()
	s.visit(cur.id)
	s.cand.push(cur)
	if c := h.chunk(cur.id); c != nil && c.live[cur.id&chunkMask].Load() && (f == nil || f.Allow(cur.id)) {
		s.res.push(cur)
	}
	live := int(h.live.Load())
	if f != nil && !h.noEstimate && h.preferScan(f, ef, live) {
		h.scan(s, q, k, f)
		return s.res.drainTo(dst, k), live
	}
	hungry := max(32*ef, live/10)
	visits := h.searchLayer(s, q, 0, ef, f, noID, true, nil, hungry)
	if len(s.res) < k && len(s.res) < live {
		h.scan(s, q, k, f)
		visits += live
	}
	return s.res.drainTo(dst, k), visits
}

// entry returns the entry point scored against q and its top layer, or false if the graph is
// empty. Compact moves the entry point before it reclaims the old one, so a reload finds a
// stored node.
func (h *HNSW) entry(q []float32) (cand, int, bool) {
	for {
		ep := h.ep.Load()
		if ep == 0 {
			return cand{}, 0, false
		}
		if v, ok := h.vecOK(uint32(ep)); ok {
			return cand{uint32(ep), dot(q, v)}, int(ep>>32) & 0xff, true
		}
	}
}

// preferScan estimates the fraction of live ids f allows from up to 64 of them and reports
// whether an exact scan should beat the graph search (see SearchEf).
func (h *HNSW) preferScan(f Filter, ef, live int) bool {
	size := h.size()
	if size == 0 || live == 0 {
		return true
	}
	const want, maxProbes = 64, 512
	seen, allowed := 0, 0
	// Pseudo-random ids (a fixed sequence, so results are reproducible): a regular stride
	// would alias with filters like id%m == 0.
	for probe := uint64(1); probe <= maxProbes && seen < want; probe++ {
		id := uint32(splitmix(probe*0x9e3779b97f4a7c15) % uint64(size))
		if c := h.chunk(id); c == nil || !c.live[id&chunkMask].Load() {
			continue
		}
		seen++
		if f.Allow(id) {
			allowed++
		}
	}
	if seen == 0 {
		return true // almost everything is deleted
	}
	if allowed == 0 {
		return true
	}
	p := float64(allowed) / float64(seen)
	n := float64(live)
	return 24*float64(ef)/p > p*n+n/8
}

// scan replaces s.res with the exact top k over every live id allowed by f.
func (h *HNSW) scan(s *scratch, q []float32, k int, f Filter) {
	s.res = s.res[:0]
	d := h.dir.Load()
	if d == nil {
		return
	}
	rows := *h.vecs.dir.Load()
	dim := h.dim
	for ci, c := range *d {
		if c == nil {
			continue // freed by Compact
		}
		for i := range c.live {
			if !c.live[i].Load() {
				continue
			}
			id := uint32(ci<<chunkBits | i)
			if f != nil && !f.Allow(id) {
				continue
			}
			slot := c.slot[i].Load() - 1
			if slot == noID {
				continue // deleted and reclaimed since the live check
			}
			if int(slot>>rowBits) >= len(rows) {
				rows = *h.vecs.dir.Load() // the arena grew during the scan
			}
			off := int(slot&rowMask) * dim
			sc := dot(q, rows[slot>>rowBits][off:off+dim])
			if len(s.res) < k || sc > s.res[0].score {
				s.res.offer(cand{id, sc}, k)
			}
		}
	}
}
