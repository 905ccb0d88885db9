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
