// Package retrieval finds the candidates a request ranks: nearest neighbours of the query
// vector in the ANN index, and the most popular available items for cold requests.
package retrieval

import (
	"cmp"
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/podium-rank/podium/engine/ann"
	"github.com/podium-rank/podium/engine/catalog"
)

// ScoreFunc returns the popularity score of an item. Higher is more popular; NaN means none.
type ScoreFunc func(id uint32) float32

// Popularity keeps the catalog's items in order of a popularity score so that the top
// available items come out in O(k). The order is rebuilt by Refresh, off the request path.
// Top is goroutine-safe and lock-free; Refresh calls are serialised.
type Popularity struct {
	cat   *catalog.Catalog
	score atomic.Pointer[ScoreFunc]
	mu    sync.Mutex
	snap  atomic.Pointer[popSnap]
}

type popSnap struct {
	version uint64
	ids     []uint32
	scores  []float32
	byID    []float32 // score of each dense id divided by max
	max     float32
}

// NewPopularity returns a popularity ranking of cat's items by the item feature named
// feature (e.g. "popularity"). Call Refresh after loading the catalog.
func NewPopularity(cat *catalog.Catalog, feature string) *Popularity {
	p := &Popularity{cat: cat}
	p.SetScore(func(id uint32) float32 {
		col, ok := cat.FeatureColumn(feature)
		if !ok {
			return float32(math.NaN())
		}
		return cat.ItemFeature(id, col)
	})
	p.snap.Store(&popSnap{version: ^uint64(0)})
	return p
}

// SetScore replaces the score function, for example with one that blends live event
// counts. It takes effect at the next Refresh.
func (p *Popularity) SetScore(f ScoreFunc) { p.score.Store(&f) }

// Refresh rebuilds the order if the catalog changed since the last build, or if force is
// set. It reports whether it rebuilt.
func (p *Popularity) Refresh(force bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	v := p.cat.Version()
	if !force && p.snap.Load().version == v {
		return false
	}
	score := *p.score.Load()
	n := p.cat.ItemCap()
	s := &popSnap{version: v, ids: make([]uint32, 0, n)}
	tmp := make([]float32, n)
	for id := uint32(0); id < uint32(n); id++ {
		if !p.cat.Live(id) {
			continue
		}
		x := score(id)
		if x != x {
			x = 0
		}
		tmp[id] = x
		s.ids = append(s.ids, id)
	}
	slices.SortFunc(s.ids, func(a, b uint32) int {
		if c := cmp.Compare(tmp[b], tmp[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	s.scores = make([]float32, len(s.ids))
	for i, id := range s.ids {
		s.scores[i] = tmp[id]
	}
	if len(s.scores) > 0 {
		s.max = s.scores[0]
	}
	s.byID = tmp
	if s.max > 0 {
		inv := 1 / s.max
		for i := range tmp {
			tmp[i] *= inv
		}
	}
	p.snap.Store(s)
	return true
}

// Top calls add for the most popular items that f allows, best first, looking at no more
// than the scan most popular (0: all of them), until add returns false or the items run
// out. The score passed is the item's popularity divided by the
// highest one (1 for the most popular item).
func (p *Popularity) Top(f ann.Filter, scan int, add func(id uint32, score float32) bool) {
	s := p.snap.Load()
	inv := float32(1)
	if s.max > 0 {
		inv = 1 / s.max
	}
	ids := s.ids
	if scan > 0 && scan < len(ids) {
		ids = ids[:scan]
	}
	for i, id := range ids {
		if f != nil && !f.Allow(id) {
			continue
		}
		if !add(id, s.scores[i]*inv) {
			return
		}
	}
}

// Score returns the popularity of an item relative to the most popular one (0 to 1), as of
// the last Refresh; 0 for items unknown then.
func (p *Popularity) Score(id uint32) float32 {
	s := p.snap.Load()
	if int(id) < len(s.byID) {
		return s.byID[id]
	}
	return 0
}

// Len returns the number of items in the current order.
func (p *Popularity) Len() int { return len(p.snap.Load().ids) }
