package features

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// MaxColumns is the largest column count a Schema may be created with.
const MaxColumns = 1 << 12

// Schema maps feature names to dense column ids 0..Len()-1, handed out in the order names
// are first interned. A column id never changes or disappears once given.
//
// Schema is goroutine-safe. Lookup, Names and Len take no lock: they read an immutable
// snapshot behind an atomic pointer, and Intern publishes a new snapshot (copy on write)
// under a mutex. Interning is therefore O(Len) per new name, which is fine for a few hundred
// features added at startup or when a plugin manifest first names them.
type Schema struct {
	mu   sync.Mutex // serialises Intern
	max  int
	snap atomic.Pointer[schemaSnap]
}

// schemaSnap is immutable once published.
type schemaSnap struct {
	ids   map[string]int
	names []string
}

// NewSchema returns an empty schema that holds at most maxCols columns. It panics if
// maxCols is not in 1..MaxColumns (a programming error).
func NewSchema(maxCols int) *Schema {
	if maxCols <= 0 || maxCols > MaxColumns {
		panic(fmt.Sprintf("features: NewSchema(%d): maxCols must be in 1..%d", maxCols, MaxColumns))
	}
	s := &Schema{max: maxCols}
	s.snap.Store(&schemaSnap{ids: map[string]int{}})
	return s
}

// Intern returns the column id of name, assigning the next free id if name is new.
// It returns ErrEmptyName for "" and ErrSchemaFull when MaxCols ids are taken.
func (s *Schema) Intern(name string) (int, error) {
	if id, ok := s.Lookup(name); ok {
		return id, nil
	}
	if name == "" {
		return 0, ErrEmptyName
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.snap.Load()
	if id, ok := old.ids[name]; ok { // interned while we waited for the lock
		return id, nil
	}
	if len(old.names) >= s.max {
		return 0, fmt.Errorf("cannot intern feature %q: %w (%d columns)", name, ErrSchemaFull, s.max)
	}
	id := len(old.names)
	next := &schemaSnap{ids: make(map[string]int, id+1), names: make([]string, id+1)}
	for k, v := range old.ids {
		next.ids[k] = v
	}
	copy(next.names, old.names)
	next.ids[name] = id
	next.names[id] = name
	s.snap.Store(next)
	return id, nil
}

// Lookup returns the column id of name and whether name has been interned. It takes no lock.
func (s *Schema) Lookup(name string) (int, bool) {
	id, ok := s.snap.Load().ids[name]
	return id, ok
}

// Name returns the name of column id and whether the id is assigned.
func (s *Schema) Name(id int) (string, bool) {
	names := s.snap.Load().names
	if id < 0 || id >= len(names) {
		return "", false
	}
	return names[id], true
}

// Names returns a copy of the interned names indexed by column id.
func (s *Schema) Names() []string {
	return append([]string(nil), s.snap.Load().names...)
}

// Len returns the number of interned columns.
func (s *Schema) Len() int { return len(s.snap.Load().names) }

// MaxCols returns the column limit given to NewSchema. Stores sized for this schema accept
// any column id below it.
func (s *Schema) MaxCols() int { return s.max }
