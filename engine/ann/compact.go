package ann

import "slices"

// Compaction removes tombstones from the HNSW graph in place (RATIONALE.md, "Why compaction
// repairs the graph in place?"). Searches never wait for it and never see a torn state:
//
//  1. Snapshot: under each id stripe's lock, the ids stored but not live are the tombstones D,
//     with the arena slot each one holds. D is published in h.dying; from then on an Upsert
//     never collects a member of D that is still deleted as a neighbour (it may route through
//     it). If the entry point is in D it moves to a stored node outside D first.
//  2. Gate: Compact takes h.gate exclusively for an instant, which waits for the Upserts that
//     started before D was published (they may have chosen members of D as neighbours).
//  3. Repair: every stored node whose list on some layer holds a deleted member of D gets a new
//     list: its other neighbours plus the deleted neighbours' own neighbours (outside D), pruned
//     with the insertion heuristic (selectNeighbors) and topped up to its old length with the
//     best rejected candidates. This is the standard HNSW delete repair. Each list is rewritten
//     under its list stripe, like addLink does.
//  4. Reclaim: under its id stripe, a member of D whose slot is unchanged (no Upsert touched it
//     since the snapshot, so nothing linked to it after step 2) and that is not the entry point
//     loses its row and upper lists and its slot goes to the epoch reclaimer. A search that read
//     a link to it before step 3 finds slot 0 and skips it, or reads the old row, which is reused
//     only after that search has unpinned.
//  5. Chunks whose ids are all reclaimed are dropped from the directory (under every id stripe,
//     so no Upsert is between ensureChunk and storing a slot). A reader holding one keeps it
//     alive; readers that meet a nil chunk skip the id.

// inSet reports whether id is in the bitset set.
func inSet(set []uint64, id uint32) bool {
	w := int(id >> 6)
	return w < len(set) && set[w]&(1<<(id&63)) != 0
}

// maybeCompact starts a background Compact when tombstones pass h.compactAt of the nodes.
func (h *HNSW) maybeCompact() {
	if h.compactAt <= 0 {
		return
	}
	nodes := h.nodes.Load()
	dead := nodes - h.live.Load()
	// A minimum keeps tiny indexes from compacting after every few deletes.
	if dead < 64 || float64(dead) <= h.compactAt*float64(nodes) {
		return
	}
	if !h.compacting.CompareAndSwap(false, true) {
		return
	}
	h.bg.Add(1)
	go func() {
		defer h.bg.Done()
		h.Compact()
		h.compacting.Store(false)
	}()
}

// Compact removes the tombstones of deleted ids from the graph: it reconnects their neighbours
// to each other with the insertion heuristic, frees their vectors, links and, once a whole
// chunk of ids is gone, the chunk. It returns the number of nodes reclaimed and counts them in
// Stats. Deletes that happen while it runs stay tombstones until the next Compact.
//
// Compact is safe for concurrent use: searches run on without waiting, Upsert and Delete keep
// working (Upserts wait once for an instant, until those older than the compaction finish), and
// concurrent Compact calls run one after the other. It runs automatically in a background
// goroutine once tombstones pass HNSWConfig.CompactAt; it takes time proportional to the number
// of nodes plus the number of links to tombstones.
func (h *HNSW) Compact() int {
	h.compactMu.Lock()
	defer h.compactMu.Unlock()

	dead, ids, slots := h.snapshotDead()
	if len(ids) == 0 {
		return 0
	}
	h.dying.Store(&dead)
	defer h.dying.Store(nil)
	h.moveEntry(dead)
	// An empty critical section: it waits for the Upserts that started before dying was
	// published, which may have chosen members of D as neighbours.
	h.gate.Lock()
	h.gate.Unlock()

	s := h.getScratch()
	defer h.putScratch(s)
	epoch := h.rec.pin()
	d := *h.dir.Load()
	for ci, c := range d {
		if c == nil {
			continue
		}
		for i := range c.slot {
			id := uint32(ci<<chunkBits | i)
			if c.slot[i].Load() == 0 || h.isDead(dead, id) {
				continue
			}
			for l := h.levelOf(id); l >= 0; l-- {
				h.repair(s, dead, id, l)
			}
		}
	}
	h.rec.unpin(epoch)

	n := h.reclaim(ids, slots)
	h.freeChunks()
	// Slots retired in this epoch are reusable two epochs later; advance now so that the next
	// inserts reuse them (an Upsert also collects while slots are pending).
	for range 3 {
		h.rec.collect(&h.vecs)
	}
	h.compactions.Add(1)
	h.reclaimed.Add(int64(n))
	return n
}

// snapshotDead returns the tombstones as a bitset, a list and their arena slots (plus one).
// Each id stripe is locked while its ids are read, so no Upsert or Delete is half done.
func (h *HNSW) snapshotDead() (set []uint64, ids, slots []uint32) {
	size := h.size()
	set = make([]uint64, (size+63)/64)
	for st := range uint32(stripes) {
		mu := &h.opMu[st]
		mu.Lock()
		d := *h.dir.Load()
		for id := st; int(id) < len(d)*chunkSize; id += stripes {
			c := d[id>>chunkBits]
			if c == nil {
				continue
			}
			i := id & chunkMask
			if slot := c.slot[i].Load(); slot != 0 && !c.live[i].Load() && int(id) < size {
				set[id>>6] |= 1 << (id & 63)
				ids = append(ids, id)
				slots = append(slots, slot)
			}
		}
		mu.Unlock()
	}
	return set, ids, slots
}

// isDead reports whether id is a tombstone being compacted: in dead and not revived by an
// Upsert (a revived id is live before it is relinked).
func (h *HNSW) isDead(dead []uint64, id uint32) bool {
	if !inSet(dead, id) {
		return false
	}
	c := h.chunk(id)
	return c != nil && !c.live[id&chunkMask].Load()
}

// moveEntry points the entry point at the highest stored node outside dead if it is in dead,
// or empties the graph if every stored node is in dead.
func (h *HNSW) moveEntry(dead []uint64) {
	h.epMu.Lock()
	defer h.epMu.Unlock()
	ep := h.ep.Load()
	if ep == 0 || !inSet(dead, uint32(ep)) {
		return
	}
	best, bestLevel := noID, -1
	for ci, c := range *h.dir.Load() {
		if c == nil {
			continue
		}
		for i := range c.slot {
			id := uint32(ci<<chunkBits | i)
			if c.slot[i].Load() == 0 || inSet(dead, id) {
				continue
			}
			level := 0
			if nd := c.upper[i].Load(); nd != nil {
				level = nd.level
			}
			if level > bestLevel {
				best, bestLevel = id, level
			}
		}
	}
	if best == noID {
		h.ep.Store(0)
		return
	}
	h.ep.Store(epValid | uint64(bestLevel)<<32 | uint64(best))
}

// repair rewrites id's list on layer l if it links to a tombstone in dead: the candidates are
// its other neighbours and the tombstones' own neighbours, chosen with the insertion heuristic
// (selectNeighbors) and then topped up, best first, to the list's old length (two hops through
// tombstones if one gives fewer candidates than a full list). Like an
// insertion, it then links each new neighbour back to id (addLink), so nodes that lose the
// in-links the tombstones held stay reachable.
func (h *HNSW) repair(s *scratch, dead []uint64, id uint32, l int) {
	base, ok := h.vecOK(id)
	if !ok {
		return
	}
	lm := h.listLock(id)
	lm.Lock()
	cur := h.neighbors(id, l, s.nbuf2)
	if !slices.ContainsFunc(cur, func(x uint32) bool { return h.isDead(dead, x) }) {
		lm.Unlock()
		return
	}
	s.reset() // the visited marks deduplicate candidates
	s.visit(id)
	s.buf = s.buf[:0]
	add := func(x uint32) {
		if s.visit(x) || h.isDead(dead, x) {
			return
		}
		if v, ok := h.vecOK(x); ok {
			s.buf = append(s.buf, cand{x, dot(base, v)})
		}
	}
	for _, x := range cur {
		if !h.isDead(dead, x) {
			add(x)
		}
	}
	for _, x := range cur {
		if h.isDead(dead, x) {
			for _, y := range h.neighbors(x, l, s.nbuf) {
				add(y)
			}
		}
	}
	// When most of a neighbourhood died (the oldest items of a catalog are its hubs), one hop
	// can leave a node with almost no candidates and whole clusters unreachable: deleting the
	// oldest 2/3 of a small index at once left recall@10 at 0.89, a second hop brought it to 1.
	if len(s.buf) < h.maxLinks(l) {
		for _, x := range cur {
			if !h.isDead(dead, x) {
				continue
			}
			s.hop = append(s.hop[:0], h.neighbors(x, l, s.nbuf)...)
			for _, y := range s.hop {
				if h.isDead(dead, y) {
					for _, z := range h.neighbors(y, l, s.nbuf) {
						add(z)
					}
				}
			}
		}
	}
	slices.SortFunc(s.buf, byScoreDesc)
	s.ids = h.selectNeighbors(base, s.buf, h.maxLinks(l), s.ids[:0])
	// The heuristic over this many candidates keeps few of them (mean layer-0 degree 8 instead
	// of 17 after four waves of churn, and recall@10 at ef 10 fell from 0.95 to 0.90), so the
	// list is topped up with the best rejected candidates to the degree it had.
	for _, c := range s.buf {
		if len(s.ids) >= len(cur) {
			break
		}
		if !slices.Contains(s.ids, c.id) {
			s.ids = append(s.ids, c.id)
		}
	}
	h.setList(id, l, s.ids)
	// Keep only the new neighbours in s.ids (cur is s.nbuf2, which addLink reuses).
	fresh := s.ids[:0]
	for _, x := range s.ids {
		if !slices.Contains(cur, x) {
			fresh = append(fresh, x)
		}
	}
	lm.Unlock()
	for _, x := range fresh {
		h.addLink(s, x, id, base, l)
	}
}

// reclaim frees the tombstones ids (with their snapshot slots) that no Upsert touched since the
// snapshot and returns how many it freed.
func (h *HNSW) reclaim(ids, slots []uint32) int {
	n := 0
	for j, id := range ids {
		mu := &h.opMu[id%stripes]
		mu.Lock()
		c := h.chunk(id)
		i := id & chunkMask
		if ep := h.ep.Load(); c.slot[i].Load() != slots[j] || c.live[i].Load() || ep != 0 && uint32(ep) == id {
			mu.Unlock()
			continue
		}
		lm := h.listLock(id)
		lm.Lock()
		h.row0(c, id)[0].Store(0)
		lm.Unlock()
		if nd := c.upper[i].Swap(nil); nd != nil {
			h.upperCap.Add(-int64(nd.level * h.m))
			h.uppers.Add(-1)
		}
		c.slot[i].Store(0)
		h.rec.retire(slots[j] - 1)
		h.nodes.Add(-1)
		mu.Unlock()
		n++
	}
	return n
}

// freeChunks drops chunks whose ids are all unstored from the directory.
func (h *HNSW) freeChunks() {
	empty := func(c *hchunk) bool {
		for i := range c.slot {
			if c.slot[i].Load() != 0 {
				return false
			}
		}
		return true
	}
	found := false
	for _, c := range *h.dir.Load() {
		if c != nil && empty(c) {
			found = true
			break
		}
	}
	if !found {
		return
	}
	for i := range h.opMu {
		h.opMu[i].Lock()
	}
	h.dirMu.Lock()
	old := *h.dir.Load()
	nd := make([]*hchunk, len(old))
	copy(nd, old)
	freed := false
	for ci, c := range nd {
		if c != nil && empty(c) {
			nd[ci] = nil
			freed = true
		}
	}
	if freed {
		h.dir.Store(&nd)
	}
	h.dirMu.Unlock()
	for i := range h.opMu {
		h.opMu[i].Unlock()
	}
}
