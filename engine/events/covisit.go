package events

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
)

// Scored is an item with a score, as the co-visitation retriever returns it.
type Scored struct {
	ID    uint32
	Score float32
}

// coVisit keeps, per item, its top co-visited neighbours: items interacted with by the same
// user or session within CoVisitGap. Each list holds at most m neighbours and is maintained
// with the Space-Saving algorithm (Metwally et al. 2005): a new neighbour replaces the one
// with the smallest count and inherits that count as its error, so heavy pairs are kept
// and memory stays m×12 bytes per item that has any pair. Lists are guarded by striped
// mutexes (by item id); readers lock each list briefly.
type coVisit struct {
	m      int
	locks  [256]sync.Mutex
	growMu sync.Mutex
	dir    atomic.Pointer[[]*[counterChunkItems]*neighbours]
	items  atomic.Int64 // items with a list
	pairs  atomic.Int64 // neighbour entries held
}

type neighbours struct {
	ids  []uint32
	cnt  []float32
	errs []float32
}

func newCoVisit(m int) *coVisit {
	c := &coVisit{m: m}
	c.dir.Store(new([]*[counterChunkItems]*neighbours))
	return c
}

func (c *coVisit) slot(id uint32, grow bool) **neighbours {
	ci := int(id >> counterChunkBits)
	dir := *c.dir.Load()
	if ci >= len(dir) || dir[ci] == nil {
		if !grow {
			return nil
		}
		c.growMu.Lock()
		dir = *c.dir.Load()
		if ci >= len(dir) || dir[ci] == nil {
			next := make([]*[counterChunkItems]*neighbours, max(len(dir), ci+1))
			copy(next, dir)
			next[ci] = new([counterChunkItems]*neighbours)
			c.dir.Store(&next)
			dir = next
		}
		c.growMu.Unlock()
	}
	return &dir[ci][id&(counterChunkItems-1)]
}

// add counts one co-visit of a and b, in both directions.
func (c *coVisit) add(a, b uint32, w float32) {
	if a == b {
		return
	}
	c.addOne(a, b, w)
	c.addOne(b, a, w)
}

func (c *coVisit) addOne(a, b uint32, w float32) {
	mu := &c.locks[a&255]
	mu.Lock()
	defer mu.Unlock()
	p := c.slot(a, true)
	n := *p
	if n == nil {
		n = &neighbours{}
		*p = n
		c.items.Add(1)
	}
	c.insert(n, b, w, 0)
}

// insert adds w to b's count in n (Space-Saving when n is full). Call with n's lock held.
func (c *coVisit) insert(n *neighbours, b uint32, w, err float32) {
	if i := slices.Index(n.ids, b); i >= 0 {
		n.cnt[i] += w + err
		n.errs[i] += err
		return
	}
	if len(n.ids) < c.m {
		n.ids = append(n.ids, b)
		n.cnt = append(n.cnt, w+err)
		n.errs = append(n.errs, err)
		c.pairs.Add(1)
		return
	}
	lo := 0
	for i, x := range n.cnt {
		if x < n.cnt[lo] {
			lo = i
		}
	}
	n.ids[lo], n.errs[lo] = b, n.cnt[lo]+err
	n.cnt[lo] += w + err
}

// visit calls fn for each neighbour of a with its guaranteed count (count minus error),
// holding a's lock; fn must not call back into c.
func (c *coVisit) visit(a uint32, fn func(id uint32, score float32)) {
	mu := &c.locks[a&255]
	mu.Lock()
	defer mu.Unlock()
	p := c.slot(a, false)
	if p == nil || *p == nil {
		return
	}
	n := *p
	for i, id := range n.ids {
		if s := n.cnt[i] - n.errs[i]; s > 0 {
			fn(id, s)
		}
	}
}

// coVisited merges the neighbours of recent (weighted by weights[i]) into dst: the top n
// items by summed score, best first, leaving out the recent items themselves. Each list is
// normalised by its largest count, so one very busy item does not drown the others. scratch
// is reused between calls.
func (c *coVisit) coVisited(recent []uint32, weights []float32, n int, scratch, dst []Scored) ([]Scored, []Scored) {
	scratch = scratch[:0]
	for i, a := range recent {
		w := weights[i]
		if w <= 0 {
			continue
		}
		start := len(scratch)
		var top float32
		c.visit(a, func(id uint32, s float32) {
			scratch = append(scratch, Scored{id, s})
			top = max(top, s)
		})
		if !(top > 0) {
			scratch = scratch[:start]
			continue
		}
		for k := start; k < len(scratch); k++ {
			scratch[k].Score = scratch[k].Score / top * w
		}
	}
	slices.SortFunc(scratch, func(a, b Scored) int { return cmp.Compare(a.ID, b.ID) })
	w := 0
	for _, s := range scratch {
		if slices.Contains(recent, s.ID) {
			continue
		}
		if w > 0 && scratch[w-1].ID == s.ID {
			scratch[w-1].Score += s.Score
			continue
		}
		scratch[w] = s
		w++
	}
	scratch = scratch[:w]
	slices.SortFunc(scratch, func(a, b Scored) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return scratch, append(dst, scratch[:min(n, len(scratch))]...)
}
