// Package marks provides reusable sets and maps of dense ids sized to what a request
// touches (a few thousand ids), not to the catalog, that clear in O(1): each Reset starts a
// new generation instead of zeroing memory.
package marks

// Set is a set of ids: open addressing with linear probing and generation-stamped slots.
// Its memory follows the number of members, so a pooled Set costs the same for a catalog
// of ten thousand items or of ten million. The zero value is ready after Reset. A Set is
// not goroutine-safe; keep one per goroutine (for example in pooled request scratch).
type Set struct {
	gen  uint32
	keys []uint32
	gens []uint32
	n    int
	mask uint32
}

// hash spreads ids over the table (Fibonacci hashing).
func hash(id uint32) uint32 { return id * 0x9E3779B1 }

// Reset empties the set and makes room for about hint members without growing.
func (s *Set) Reset(hint int) {
	need := 16
	for need < 2*hint {
		need <<= 1
	}
	if len(s.keys) < need {
		s.keys = make([]uint32, need)
		s.gens = make([]uint32, need)
		s.mask = uint32(need - 1)
		s.gen = 0
	}
	s.gen++
	if s.gen == 0 { // wrapped: clear for real once every 2^32 resets
		clear(s.gens)
		s.gen = 1
	}
	s.n = 0
}

// slot returns the slot of id, or of the empty slot where it would go, and whether it is
// there.
func (s *Set) slot(id uint32) (uint32, bool) {
	i := hash(id) & s.mask
	for s.gens[i] == s.gen {
		if s.keys[i] == id {
			return i, true
		}
		i = (i + 1) & s.mask
	}
	return i, false
}

// Set adds id and reports whether it was new.
func (s *Set) Set(id uint32) bool {
	if len(s.keys) == 0 {
		s.Reset(0)
	}
	i, ok := s.slot(id)
	if ok {
		return false
	}
	s.keys[i], s.gens[i] = id, s.gen
	s.n++
	if 2*s.n > len(s.keys) {
		s.grow()
	}
	return true
}

// Has reports whether id is in the set.
func (s *Set) Has(id uint32) bool {
	if len(s.keys) == 0 {
		return false
	}
	_, ok := s.slot(id)
	return ok
}

// Len returns the number of members.
func (s *Set) Len() int { return s.n }

func (s *Set) grow() {
	keys, gens, gen := s.keys, s.gens, s.gen
	s.keys = make([]uint32, 2*len(keys))
	s.gens = make([]uint32, 2*len(keys))
	s.mask = uint32(len(s.keys) - 1)
	s.gen = 1
	for i, g := range gens {
		if g == gen {
			j, _ := s.slot(keys[i])
			s.keys[j], s.gens[j] = keys[i], 1
		}
	}
}

// Map maps ids to float32 values, with the same layout and costs as Set. The zero value is
// ready after Reset. A Map is not goroutine-safe.
type Map struct {
	set  Set
	vals []float32
}

// Reset empties the map and makes room for about hint entries without growing.
func (m *Map) Reset(hint int) {
	m.set.Reset(hint)
	if len(m.vals) < len(m.set.keys) {
		m.vals = make([]float32, len(m.set.keys))
	}
}

// Put sets the value of id and reports whether id was new.
func (m *Map) Put(id uint32, v float32) bool {
	if len(m.set.keys) == 0 {
		m.Reset(0)
	}
	i, ok := m.set.slot(id)
	if ok {
		m.vals[i] = v
		return false
	}
	m.set.keys[i], m.set.gens[i] = id, m.set.gen
	m.vals[i] = v
	m.set.n++
	if 2*m.set.n > len(m.set.keys) {
		m.grow()
	}
	return true
}

// Get returns the value of id and whether it has one.
func (m *Map) Get(id uint32) (float32, bool) {
	if len(m.set.keys) == 0 {
		return 0, false
	}
	i, ok := m.set.slot(id)
	if !ok {
		return 0, false
	}
	return m.vals[i], true
}

// Len returns the number of entries.
func (m *Map) Len() int { return m.set.n }

func (m *Map) grow() {
	old := m.set
	vals := m.vals
	m.set.keys = make([]uint32, 2*len(old.keys))
	m.set.gens = make([]uint32, 2*len(old.keys))
	m.set.mask = uint32(len(m.set.keys) - 1)
	m.set.gen = 1
	m.vals = make([]float32, len(m.set.keys))
	for i, g := range old.gens {
		if g == old.gen {
			j, _ := m.set.slot(old.keys[i])
			m.set.keys[j], m.set.gens[j], m.vals[j] = old.keys[i], 1, vals[i]
		}
	}
}
