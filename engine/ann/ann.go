// Package ann finds the stored vectors nearest to a query vector: an HNSW graph (the default,
// for catalogs that change all day), an IVF-flat index and an exact brute-force Flat index.
//
// All three implement Index and are safe for concurrent use. Scores are similarities, so a higher
// Score is better. Why HNSW is the default, why these parameters, how searches run lock-free
// beside writers and how filters are applied is written down in RATIONALE.md ("Why HNSW is the
// default index?", "Why copy-on-write neighbours?", "Why the filter rule?").
package ann

import (
	"errors"
	"fmt"
	"math"
)

// Metric is the similarity an index ranks by.
type Metric uint8

const (
	// Cosine ranks by cosine similarity. Vectors are normalised to unit length on insert and the
	// query is normalised on search, so the score is the inner product of unit vectors.
	Cosine Metric = iota
	// Dot ranks by the raw inner product. Vectors are stored as given.
	Dot
)

// String returns "cosine" or "dot".
func (m Metric) String() string {
	switch m {
	case Cosine:
		return "cosine"
	case Dot:
		return "dot"
	}
	return fmt.Sprintf("Metric(%d)", uint8(m))
}

// Result is one search hit. A higher Score is better: the cosine similarity under Cosine and the
// inner product under Dot.
type Result struct {
	ID    uint32
	Score float32
}

// Filter decides during a search whether an id may be returned. A nil Filter allows every id.
// Allow is called from the searching goroutine, possibly many times per search and for ids
// that end up not being returned; it must be cheap and must not call back into the index.
type Filter interface {
	Allow(id uint32) bool
}

// FilterFunc adapts a function to a Filter.
type FilterFunc func(id uint32) bool

// Allow calls f(id).
func (f FilterFunc) Allow(id uint32) bool { return f(id) }

// Index is a set of vectors keyed by dense item ids that answers top-k similarity queries.
// It is implemented by *HNSW, *IVF and *Flat. All methods are safe for concurrent use:
// searches run concurrently with each other and with Upsert and Delete.
type Index interface {
	// Upsert inserts the vector under id, or replaces the vector already stored under id.
	// Ids are dense item ids (0..N, gaps allowed): memory grows with the largest id, and ids
	// above MaxID are refused with ErrID. The index copies vec. Upsert returns an error wrapping
	// ErrDim, ErrNotFinite, ErrZero or ErrID, and then leaves the index unchanged.
	Upsert(id uint32, vec []float32) error
	// Delete removes id. It is a no-op if id is absent.
	Delete(id uint32)
	// Search returns append(dst[:0], hits...) where hits are up to k stored ids allowed by f
	// (nil allows all) with the highest scores for q, sorted by Score descending (ties in no
	// particular order). Fewer than k hits are returned only when fewer than k allowed ids are
	// stored (HNSW and IVF are approximate: some of the true top k may be missed, but the count
	// is still k). A query of the wrong dimension, with a NaN or infinite component, or a zero
	// query under Cosine, or k <= 0, returns dst[:0]. Search does not keep q or dst.
	Search(q []float32, k int, f Filter, dst []Result) []Result
	// Len returns the number of stored (not deleted) ids.
	Len() int
	// Dim returns the vector dimension.
	Dim() int
	// Metric returns the similarity the index ranks by.
	Metric() Metric
}

// MaxID is the largest id an index accepts. Ids are dense, so an id is also a table index.
const MaxID = 1<<31 - 1

// Errors returned (wrapped) by Upsert.
var (
	ErrDim       = errors.New("ann: vector has the wrong dimension")
	ErrNotFinite = errors.New("ann: vector has a NaN or infinite component")
	ErrZero      = errors.New("ann: zero vector has no direction under Cosine")
	ErrID        = errors.New("ann: id is above MaxID")
)

// Stats describes the size of an index.
type Stats struct {
	// Live is the number of stored, not deleted ids (Len).
	Live int
	// Deleted is the number of tombstones: deleted ids whose vectors HNSW still keeps to route
	// searches through until the next compaction. It is 0 for Flat and IVF.
	Deleted int
	// Bytes estimates the memory the index holds: vectors, links, lists and tables.
	Bytes int64
	// Compactions is the number of HNSW compactions run (HNSW.Compact, explicit or automatic).
	// It is 0 for Flat and IVF.
	Compactions int64
	// Reclaimed is the number of tombstones HNSW compactions have removed from the graph,
	// freeing their vectors and links. It is 0 for Flat and IVF.
	Reclaimed int64
}

// checkVec validates v for insertion under id and writes it, normalised under Cosine, into dst
// (len(dst) == dim).
func checkVec(dst []float32, id uint32, v []float32, dim int, m Metric) error {
	if id > MaxID {
		return fmt.Errorf("cannot upsert id %d: %w", id, ErrID)
	}
	if len(v) != dim {
		return fmt.Errorf("cannot upsert id %d: got %d components, want %d: %w", id, len(v), dim, ErrDim)
	}
	if err := normalizeInto(dst, v, m); err != nil {
		return fmt.Errorf("cannot upsert id %d: %w", id, err)
	}
	return nil
}

// normalizeInto copies v into dst (same length), scaled to unit length under Cosine. It fails
// on NaN, Inf and, under Cosine, on a zero vector.
func normalizeInto(dst, v []float32, m Metric) error {
	var s float64
	for _, x := range v {
		f := float64(x)
		s += f * f
	}
	// Squares of float32 values cannot overflow a float64 sum, so only a NaN or infinite
	// component makes s non-finite.
	if math.IsNaN(s) || math.IsInf(s, 0) {
		return ErrNotFinite
	}
	if m != Cosine {
		copy(dst, v)
		return nil
	}
	if s == 0 {
		return ErrZero
	}
	inv := 1 / math.Sqrt(s)
	for i, x := range v {
		dst[i] = float32(float64(x) * inv)
	}
	return nil
}

// prepareQuery validates q and returns it, or a normalised copy in buf under Cosine. ok is false
// for a query Search must answer with no hits.
func prepareQuery(buf, q []float32, dim int, m Metric) (out []float32, ok bool) {
	if len(q) != dim || dim == 0 {
		return nil, false
	}
	if m == Dot {
		for _, x := range q {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return nil, false
			}
		}
		return q, true
	}
	if normalizeInto(buf[:dim], q, m) != nil {
		return nil, false
	}
	return buf[:dim], true
}

var (
	_ Index = (*HNSW)(nil)
	_ Index = (*IVF)(nil)
	_ Index = (*Flat)(nil)
)
