package catalog

import "sync"

// Interner maps string ids to dense uint32 ids, assigned in order of first sight, and back.
// All methods are goroutine-safe. Lookups take a read lock; the reverse mapping is lock-free.
type Interner struct {
	mu    sync.RWMutex
	ids   map[string]uint32
	names strColumn
	n     uint32
}

// NewInterner returns an empty interner.
func NewInterner() *Interner {
	return &Interner{ids: make(map[string]uint32)}
}

// Lookup returns the dense id of s and whether s is known.
func (in *Interner) Lookup(s string) (uint32, bool) {
	in.mu.RLock()
	id, ok := in.ids[s]
	in.mu.RUnlock()
	return id, ok
}

// LookupBytes is Lookup for a byte slice; it does not allocate.
func (in *Interner) LookupBytes(b []byte) (uint32, bool) {
	in.mu.RLock()
	id, ok := in.ids[string(b)]
	in.mu.RUnlock()
	return id, ok
}

// Intern returns the dense id of s, assigning the next one if s is new. created reports
// whether it was new.
func (in *Interner) Intern(s string) (id uint32, created bool) {
	if id, ok := in.Lookup(s); ok {
		return id, false
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if id, ok := in.ids[s]; ok {
		return id, false
	}
	id = in.n
	in.names.grow(int(id) + 1)
	in.names.store(id, s)
	in.ids[s] = id
	in.n++
	return id, true
}

// Name returns the string id of a dense id, or "" for an id never assigned.
func (in *Interner) Name(id uint32) string { return in.names.load(id) }

// Len returns how many ids have been assigned. Ids are never reused.
func (in *Interner) Len() int {
	in.mu.RLock()
	n := in.n
	in.mu.RUnlock()
	return int(n)
}
