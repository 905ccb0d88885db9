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
	env.saved.Reset()
}
