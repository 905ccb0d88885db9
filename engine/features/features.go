// Package features stores the numeric features of items and users and gathers them into
// the column-major float32 matrices that ranking plugins read.
//
// Three stores live here:
//   - Schema interns feature names to small column ids shared by every store.
//   - ItemStore is a dense, chunked float32 arena indexed by the catalog's dense item ids;
//     it is the hot path (Gather of ~1000 items per request) and never allocates per item.
//   - UserStore and KV keep user rows, embeddings, session state and counters in fastcache,
//     encoded in a compact binary format, so that millions of keys cost the GC nothing.
//
// Why the arena for items and fastcache for users is in RATIONALE.md, "Why a dense arena
// for item features?" and "Why fastcache for users, sessions and counters?".
package features

import (
	"errors"
	"math"
)

// Errors returned by this package. Compare with errors.Is.
var (
	// ErrSchemaFull is returned by Schema.Intern when every column id is taken.
	ErrSchemaFull = errors.New("features: schema is full")
	// ErrEmptyName is returned by Schema.Intern for an empty feature name.
	ErrEmptyName = errors.New("features: empty feature name")
	// ErrIDOutOfRange is returned when an item id is at or above the store's item limit.
	ErrIDOutOfRange = errors.New("features: item id out of range")
	// ErrLengthMismatch is returned when column and value slices differ in length.
	ErrLengthMismatch = errors.New("features: columns and values differ in length")
	// ErrDuplicateColumn is returned when a user row names a column twice.
	ErrDuplicateColumn = errors.New("features: duplicate column")
	// ErrTooLarge is returned when an encoded entry exceeds fastcache's 64 KiB entry limit.
	ErrTooLarge = errors.New("features: entry too large for the cache")
	// ErrCorrupt is returned when stored bytes cannot be decoded.
	ErrCorrupt = errors.New("features: corrupt encoded value")
)

// nanBits is the bit pattern of the NaN that marks a missing value everywhere in this
// package. Test for a missing value with v != v (or math.IsNaN).
const nanBits uint32 = 0x7fc00000

// Missing returns the value stores report for a feature that was never set: a quiet NaN.
func Missing() float32 { return math.Float32frombits(nanBits) }
