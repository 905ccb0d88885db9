package pipeline

import (
	"errors"
	"math"
	"testing"
)

type fakeCatalog struct {
	n        int
	outStock map[uint32]bool
}

func (c *fakeCatalog) ItemCap() int                                 { return c.n }
func (c *fakeCatalog) Available(id uint32) bool                     { return int(id) < c.n && !c.outStock[id] }
func (c *fakeCatalog) Embedding(id uint32, dst []float32) []float32 { return append(dst, float32(id)) }
func (c *fakeCatalog) Dim() int                                     { return 1 }

type stageFunc struct {
	name string
	f    func(*Env, *List) error
}

func (s stageFunc) Info() StageInfo             { return StageInfo{Name: s.name, Plugin: s.name, Version: "test"} }
func (s stageFunc) Run(env *Env, l *List) error { return s.f(env, l) }

func newList(ids ...uint32) *List {
	l := &List{}
	for i, id := range ids {
		l.Add(id, float32(len(ids)-i), SourceANN)
	}
	return l
}

func TestRunEnforcesHostGuarantees(t *testing.T) {
	env := &Env{Items: &fakeCatalog{n: 10, outStock: map[uint32]bool{3: true}}}
	env.Request.K = 3
	env.Request.Exclude = []uint32{1}
	dup := stageFunc{"dup", func(_ *Env, l *List) error {
		// A misbehaving stage that duplicates the best candidate.
		l.Add(l.IDs[0], 0, SourceANN)
		return nil
	}}
	p := &Pipeline{Steps: []Step{{Stage: ByRetrieval{}}, {Stage: dup}}}
	l := newList(0, 1, 2, 3, 4, 5)
	var res Result
	p.Run(env, l, &res)
	want := []uint32{0, 2, 4}
	if len(l.IDs) != 3 {
		t.Fatalf("got %v, want %v", l.IDs, want)
	}
	for i := range want {
		if l.IDs[i] != want[i] {
			t.Fatalf("got %v, want %v", l.IDs, want)
		}
	}
	if res.FellBack || len(res.Stages) != 2 {
		t.Fatalf("result %+v", res)
	}
}

func TestFailingStageFallsBack(t *testing.T) {
	f := func(name string, stage func(*Env, *List) error, fb Fallback, want []uint32) {
		t.Helper()
		env := &Env{Items: &fakeCatalog{n: 10}}
		env.Request.K = 10
		reverse := stageFunc{"reverse", func(_ *Env, l *List) error {
			for i := range l.Scores {
				l.Scores[i] = float32(i)
			}
			l.SortByScore()
			return nil
		}}
		p := &Pipeline{Steps: []Step{{Stage: reverse}, {Stage: stageFunc{name, stage}, Fallback: fb}}}
		l := newList(0, 1, 2)
		var res Result
		p.Run(env, l, &res)
		if !res.FellBack || !res.Stages[1].FellBack || res.Stages[0].FellBack || res.Stages[1].Error == "" {
			t.Fatalf("%s: result %+v", name, res)
		}
		for i := range want {
			if l.IDs[i] != want[i] {
				t.Fatalf("%s: got %v, want %v", name, l.IDs, want)
			}
		}
	}
	boom := func(*Env, *List) error { return errors.New("boom") }
	nan := func(_ *Env, l *List) error { l.Scores[0] = float32(math.NaN()); l.IDs = l.IDs[:1]; return nil }
	misaligned := func(_ *Env, l *List) error { l.IDs = l.IDs[:1]; return nil }
	panics := func(*Env, *List) error { panic("bad stage") }
	f("error", boom, FallbackSkip, []uint32{2, 1, 0})
	f("nan", nan, FallbackSkip, []uint32{2, 1, 0})
	f("misaligned", misaligned, FallbackSkip, []uint32{2, 1, 0})
	f("panic", panics, FallbackSkip, []uint32{2, 1, 0})
	f("retrieval", boom, FallbackRetrieval, []uint32{0, 1, 2})
}

func TestCutAndPermute(t *testing.T) {
	env := &Env{Items: &fakeCatalog{n: 10}}
	env.Request.K = 10
	p := &Pipeline{Steps: []Step{{Stage: ByRetrieval{}, Cut: 2}}}
	l := newList(5, 6, 7)
	var res Result
	p.Run(env, l, &res)
	if len(l.IDs) != 2 || l.IDs[0] != 5 {
		t.Fatalf("cut: %v", l.IDs)
	}
	var scratch List
	l = newList(5, 6, 7)
	l.Permute([]int32{2, 0}, &scratch)
	if len(l.IDs) != 2 || l.IDs[0] != 7 || l.IDs[1] != 5 || l.Scores[0] != 1 {
		t.Fatalf("permute: %+v", l)
	}
}

func TestParse(t *testing.T) {
	if k, err := ParseKind("rules"); err != nil || k != KindRules || k.String() != "rules" {
		t.Fatal(k, err)
	}
	if _, err := ParseKind("nope"); err == nil {
		t.Fatal("want error")
	}
	if f, err := ParseFallback("retrieval"); err != nil || f != FallbackRetrieval {
		t.Fatal(f, err)
	}
	if _, err := ParseFallback("x"); err == nil {
		t.Fatal("want error")
	}
}

func TestSparseScores(t *testing.T) {
	var s SparseScores
	s.Reset()
	s.Put(7, 0.5)
	s.Put(3, 1)
	s.Put(7, 0.25)
	if v, ok := s.Get(7); !ok || v != 0.25 {
		t.Fatalf("Get(7) = %v %v", v, ok)
	}
	if _, ok := s.Get(4); ok || len(s.IDs()) != 2 || s.IDs()[0] != 7 {
		t.Fatalf("ids %v", s.IDs())
	}
	s.Reset()
	if _, ok := s.Get(7); ok || len(s.IDs()) != 0 {
		t.Fatal("Reset kept scores")
	}
}
