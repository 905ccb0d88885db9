package marks

import (
	"math/rand/v2"
	"testing"
)

func TestSet(t *testing.T) {
	var s Set
	if s.Has(3) {
		t.Fatal("zero set has a member")
	}
	s.Reset(4)
	if !s.Set(2) || s.Set(2) || !s.Has(2) || s.Has(3) {
		t.Fatal("set/has wrong")
	}
	if !s.Set(1<<30) || !s.Has(1<<30) {
		t.Fatal("large id")
	}
	s.Reset(4)
	if s.Has(2) || s.Has(1<<30) || s.Len() != 0 {
		t.Fatal("reset did not clear")
	}
	s.gen = ^uint32(0)
	s.Set(1)
	s.Reset(4)
	if s.Has(1) {
		t.Fatal("wrap did not clear")
	}
}

// TestSetMatchesMap drives the set and a map with the same random operations, through
// growth and many resets.
func TestSetMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var s Set
	for round := 0; round < 50; round++ {
		s.Reset(rng.IntN(100))
		m := map[uint32]bool{}
		for i := 0; i < 3000; i++ {
			id := uint32(rng.IntN(5000))
			if rng.IntN(2) == 0 {
				if got, want := s.Set(id), !m[id]; got != want {
					t.Fatalf("Set(%d) = %v, want %v", id, got, want)
				}
				m[id] = true
			} else if s.Has(id) != m[id] {
				t.Fatalf("Has(%d) = %v, want %v", id, s.Has(id), m[id])
			}
		}
		if s.Len() != len(m) {
			t.Fatalf("Len %d, want %d", s.Len(), len(m))
		}
	}
}

func BenchmarkSet(b *testing.B) {
	var s Set
	ids := make([]uint32, 1000)
	for i := range ids {
		ids[i] = uint32(i * 7919 % 10_000_000)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s.Reset(len(ids))
		for _, id := range ids {
			s.Set(id)
		}
		for _, id := range ids {
			if !s.Has(id) {
				b.Fatal("missing")
			}
		}
	}
}

func TestMapMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var m Map
	for round := 0; round < 30; round++ {
		m.Reset(rng.IntN(50))
		want := map[uint32]float32{}
		for i := 0; i < 2000; i++ {
			id := uint32(rng.IntN(3000))
			if rng.IntN(2) == 0 {
				v := rng.Float32()
				_, had := want[id]
				if got := m.Put(id, v); got == had {
					t.Fatalf("Put(%d) new=%v, had=%v", id, got, had)
				}
				want[id] = v
			} else {
				v, ok := m.Get(id)
				w, wok := want[id]
				if ok != wok || v != w {
					t.Fatalf("Get(%d) = %v %v, want %v %v", id, v, ok, w, wok)
				}
			}
		}
		if m.Len() != len(want) {
			t.Fatalf("Len %d, want %d", m.Len(), len(want))
		}
	}
}
