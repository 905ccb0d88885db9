package marks

import "testing"

func TestSet(t *testing.T) {
	var s Set
	s.Reset(4)
	if !s.Set(2) || s.Set(2) || !s.Has(2) || s.Has(3) {
		t.Fatal("set/has wrong")
	}
	if !s.Set(100) || !s.Has(100) {
		t.Fatal("growth wrong")
	}
	s.Reset(4)
	if s.Has(2) || s.Has(100) {
		t.Fatal("reset did not clear")
	}
	s.gen = ^uint32(0)
	s.Set(1)
	s.Reset(4)
	if s.Has(1) {
		t.Fatal("wrap did not clear")
	}
}
