package features

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// UserRow is one user's features and optional embedding, as decoded by UserStore.GetUser.
// Its slices are reused by every GetUser into the same row, so keep one row per goroutine
// (for example in a per-request scratch struct) and copy anything kept beyond the next call.
// A UserRow is not goroutine-safe.
type UserRow struct {
	Cols []int     // column ids, unique, in the order they were put
	Vals []float32 // Vals[k] is the value of column Cols[k]
	Emb  []float32 // the embedding, empty if none was put

	buf   []byte  // raw encoded bytes, reused
	index []int32 // column id -> position in Cols, built by Gather for wide rows
}

// Reset empties the row, keeping its capacity.
func (r *UserRow) Reset() {
	r.Cols, r.Vals, r.Emb = r.Cols[:0], r.Vals[:0], r.Emb[:0]
}

// Value returns the value of column col and whether the row has it.
func (r *UserRow) Value(col int) (float32, bool) {
	for k, c := range r.Cols {
		if c == col {
			return r.Vals[k], true
		}
	}
	return 0, false
}

// Gather writes the value of each column of cols into dst[f] (NaN if the row lacks it) and
// returns dst[:len(cols)], allocating only if cap(dst) < len(cols).
func (r *UserRow) Gather(cols []int, dst []float32) []float32 {
	if cap(dst) < len(cols) {
		dst = make([]float32, len(cols))
	}
	dst = dst[:len(cols)]
	missing := Missing()
	if nc := len(r.Cols); nc*len(cols) <= 1024 { // small: a scan beats building an index
		// Each scan starts just after the previous match, so a request asking for columns
		// in the order the row stores them finds each at the first probe.
		next := 0
		for f, col := range cols {
			v := missing
			if i := r.indexFrom(col, next); i >= 0 {
				v = r.Vals[i]
				next = i + 1
			}
			dst[f] = v
		}
		return dst
	}
	maxCol := 0
	for _, c := range r.Cols {
		maxCol = max(maxCol, c)
	}
	r.index = slices.Grow(r.index[:0], maxCol+1)[:maxCol+1]
	for i := range r.index {
		r.index[i] = -1
	}
	for k, c := range r.Cols {
		r.index[c] = int32(k)
	}
	for f, col := range cols {
		v := missing
		if uint(col) < uint(len(r.index)) {
			if k := r.index[col]; k >= 0 {
				v = r.Vals[k]
			}
		}
		dst[f] = v
	}
	return dst
}

// indexFrom returns the position of col in r.Cols, or -1, probing from start to the end and
// then from 0. Columns in a row are unique (PutUser and the decoder enforce it), so any
// match is the match.
func (r *UserRow) indexFrom(col, start int) int {
	cs := r.Cols
	start = min(start, len(cs))
	for k := start; k < len(cs); k++ {
		if cs[k] == col {
			return k
		}
	}
	for k := 0; k < start; k++ {
		if cs[k] == col {
			return k
		}
	}
	return -1
}

// UserStore keeps each user's features and optional embedding as one compact binary entry
// in fastcache, keyed by the user's dense id (4 bytes). The encoding is a header byte, a
// uvarint count, (uvarint column id, float32) pairs and a uvarint-counted float32 embedding,
// all little-endian: 32 features and a 64-d embedding take 419 bytes.
//
// UserStore is goroutine-safe. Like KV it is a cache: an entry may be evicted when the store
// is full, so the caller must treat a miss as "no features" and reload users from their
// source of truth. An entry (features + embedding) is limited to MaxEntryBytes, about 10,900
// features or a 16,380-d embedding.
//
// Why fastcache here is in RATIONALE.md, "Why fastcache for users, sessions and counters?".
type UserStore struct {
	kv *KV
}

// NewUserStore returns an empty user store holding at most maxBytes bytes (at least
// MinKVBytes). It panics if maxBytes <= 0.
func NewUserStore(maxBytes int) *UserStore {
	return &UserStore{kv: NewKV(maxBytes)}
}

func userKey(id uint32) [4]byte {
	var k [4]byte
	binary.LittleEndian.PutUint32(k[:], id)
	return k
}

// PutUser replaces user id's row with features vals[k] for columns cols[k] and the
// embedding emb (nil for none). The slices may be reused after PutUser returns. It returns
// ErrLengthMismatch, ErrDuplicateColumn or ErrTooLarge without storing anything, and panics
// if a column is outside [0, MaxColumns).
func (s *UserStore) PutUser(id uint32, cols []int, vals []float32, emb []float32) error {
	if len(cols) != len(vals) {
		return fmt.Errorf("cannot store user %d: %w (%d columns, %d values)", id, ErrLengthMismatch, len(cols), len(vals))
	}
	var seen colSet
	for _, c := range cols {
		if uint(c) >= MaxColumns {
			panic(fmt.Sprintf("features: user column %d out of range [0,%d)", c, MaxColumns))
		}
		if !seen.add(c) {
			return fmt.Errorf("cannot store user %d: %w (column %d)", id, ErrDuplicateColumn, c)
		}
	}
	k := userKey(id)
	if err := checkEntry(k[:], userRowSize(cols, emb)); err != nil {
		return fmt.Errorf("cannot store user %d: %w", id, err)
	}
	b := getBuf()
	*b = appendUserRow((*b)[:0], cols, vals, emb)
	s.kv.c.Set(k[:], *b)
	putBuf(b)
	return nil
}

// GetUser decodes user id's row into dst, reusing dst's slices, and reports whether the user
// was found. A missing, evicted or undecodable entry leaves dst empty and returns false.
// It allocates nothing once dst's slices have grown to the row's size.
func (s *UserStore) GetUser(id uint32, dst *UserRow) bool {
	k := userKey(id)
	raw, ok := s.kv.c.HasGet(dst.buf[:0], k[:])
	dst.buf = raw
	if !ok {
		dst.Reset()
		return false
	}
	return decodeUserRow(raw, dst) == nil
}

// Gather reads user id into row (as GetUser) and writes the values of cols into dst (as
// UserRow.Gather, NaN where missing). It returns the values and whether the user was found;
// for an unknown user every value is NaN.
func (s *UserStore) Gather(id uint32, cols []int, row *UserRow, dst []float32) ([]float32, bool) {
	ok := s.GetUser(id, row)
	return row.Gather(cols, dst), ok
}

// DeleteUser removes user id. Removing an unknown user is a no-op.
func (s *UserStore) DeleteUser(id uint32) {
	k := userKey(id)
	s.kv.c.Del(k[:])
}

// Stats returns the underlying cache's counters.
func (s *UserStore) Stats() KVStats { return s.kv.Stats() }
