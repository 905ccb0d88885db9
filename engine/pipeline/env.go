package pipeline

import (
	"github.com/podium-rank/podium/engine/features"
	"github.com/podium-rank/podium/engine/internal/marks"
)

// Catalog is the read-only view of items that stages and the host guarantees use.
// *catalog.Catalog implements it. Implementations must be goroutine-safe.
type Catalog interface {
	// ItemCap returns one more than the largest dense item id.
	ItemCap() int
	// Available reports whether an item exists and is in stock.
	Available(id uint32) bool
	// Embedding appends the item's embedding to dst.
	Embedding(id uint32, dst []float32) []float32
	// Dim returns the embedding dimension.
	Dim() int
}

// Env is everything a run sees besides the candidate list: the request, the catalog, the
// query vector and per-run scratch. One Env serves one request at a time; reuse it through
// a pool. Env is not goroutine-safe.
type Env struct {
	Request Request
	Items   Catalog
	// Query is the vector retrieval searched with (user, session and context blended), or
	// empty when there was none.
	Query []float32
	// User is the requesting user's row (features and embedding) when HasUser is set.
	User    features.UserRow
	HasUser bool
	// Now is the request time in Unix microseconds, handed in so that runs are
	// reproducible; real-time features are read as of Now.
	Now int64
	// CoVisit holds the request's co-visitation scores (items interacted with together
	// with the session's recent items), normalised so the best is 1; empty without events.
	CoVisit SparseScores
	// Recent holds the session's own recent items, scored by type weight and recency,
	// normalised so the best is 1; empty without events.
	Recent SparseScores
	// Affinity is the request's interest in the values of one item attribute (category by
	// default), from the session's recent items and the context item.
	Affinity Affinity
	// Clock times stages; nil means no timings.
	Clock Clock

	saved List
	seen  marks.Set
}

// Reset prepares env for a new request, keeping its buffers.
func (env *Env) Reset() {
	env.Request.Reset()
	env.Query = env.Query[:0]
	env.User.Reset()
	env.HasUser = false
	env.Now = 0
	env.CoVisit.Reset()
	env.Recent.Reset()
	env.Affinity.Reset()
	env.saved.Reset()
}

// SparseScores holds scores for a few items of a request, looked up by dense id in O(1).
// Its memory follows the number of entries, not the catalog; Reset is O(1). It is not
// goroutine-safe.
type SparseScores struct {
	m   marks.Map
	ids []uint32
}

// Reset empties the scores.
func (s *SparseScores) Reset() {
	s.m.Reset(0)
	s.ids = s.ids[:0]
}

// Put sets the score of id.
func (s *SparseScores) Put(id uint32, v float32) {
	if s.m.Put(id, v) {
		s.ids = append(s.ids, id)
	}
}

// Get returns the score of id and whether it has one.
func (s *SparseScores) Get(id uint32) (float32, bool) { return s.m.Get(id) }

// IDs returns the ids that have a score, in the order they were first put.
func (s *SparseScores) IDs() []uint32 { return s.ids }

// Affinity weighs the values of one item attribute (codes as catalog.AttributeCode gives
// them) by a request's interest in them, the best 1. It holds a few values, so lookups are
// a linear scan. Attr is the attribute's index, -1 when there is none.
type Affinity struct {
	Attr  int
	Codes []uint32
	W     []float32
}

// Reset empties a, keeping its buffers.
func (a *Affinity) Reset() {
	a.Attr = -1
	a.Codes, a.W = a.Codes[:0], a.W[:0]
}

// Add adds w to the weight of code (0, a missing value, is ignored).
func (a *Affinity) Add(code uint32, w float32) {
	if code == 0 || !(w > 0) {
		return
	}
	for i, c := range a.Codes {
		if c == code {
			a.W[i] += w
			return
		}
	}
	a.Codes = append(a.Codes, code)
	a.W = append(a.W, w)
}

// Normalize scales the weights so that the best is 1.
func (a *Affinity) Normalize() {
	var top float32
	for _, w := range a.W {
		top = max(top, w)
	}
	if top > 0 {
		for i := range a.W {
			a.W[i] /= top
		}
	}
}

// Get returns the weight of code, 0 when absent.
func (a *Affinity) Get(code uint32) float32 {
	for i, c := range a.Codes {
		if c == code {
			return a.W[i]
		}
	}
	return 0
}

// Active reports whether a weighs any value.
func (a *Affinity) Active() bool { return a.Attr >= 0 && len(a.Codes) > 0 }
