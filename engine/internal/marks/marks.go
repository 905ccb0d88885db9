// Package marks provides a reusable set of dense ids that clears in O(1): each Reset starts
// a new generation instead of zeroing memory.
package marks

// Set marks dense ids below a bound. The zero value is ready after Reset. A Set is not
// goroutine-safe; keep one per goroutine (for example in pooled request scratch).
type Set struct {
	gen uint32
	m   []uint32
}

// Reset empties the set and makes room for ids below n.
func (s *Set) Reset(n int) {
	if n > len(s.m) {
		s.m = append(s.m, make([]uint32, n-len(s.m)+n/4)...)
	}
	s.gen++
	if s.gen == 0 { // wrapped: clear for real once every 2^32 resets
		clear(s.m)
		s.gen = 1
	}
}

// Set marks id and reports whether it was newly marked. Ids beyond the bound given to
// Reset grow the set.
func (s *Set) Set(id uint32) bool {
	if int(id) >= len(s.m) {
		s.m = append(s.m, make([]uint32, int(id)-len(s.m)+1+len(s.m)/4)...)
	}
	if s.m[id] == s.gen {
		return false
	}
	s.m[id] = s.gen
	return true
}

// Has reports whether id is marked.
func (s *Set) Has(id uint32) bool { return int(id) < len(s.m) && s.m[id] == s.gen }
