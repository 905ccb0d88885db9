package retrieval

import (
	"strconv"
	"strings"
	"testing"

	"github.com/podium-rank/podium/engine/ann"
	"github.com/podium-rank/podium/engine/catalog"
	"github.com/podium-rank/podium/engine/features"
	"github.com/podium-rank/podium/engine/pipeline"
)

// fixture: 100 items on a circle in 2-d; item i has popularity i and is out of stock when
// i%10 == 9.
func fixture(t *testing.T) (*catalog.Catalog, ann.Index, *Popularity) {
	t.Helper()
	cat := catalog.New(catalog.Config{Dim: 2})
	idx := ann.NewFlat(2, ann.Cosine)
	for i := 0; i < 100; i++ {
		a := float32(i) / 100 * 6.283
		v := []float32{cos(a), sin(a)}
		id, err := cat.Upsert(&catalog.Item{ID: "i" + strconv.Itoa(i), Embedding: v, InStock: i%10 != 9,
			Features: []catalog.Feature{{Name: "popularity", Value: float32(i)}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := idx.Upsert(id, v); err != nil {
			t.Fatal(err)
		}
	}
	pop := NewPopularity(cat, "popularity")
	if !pop.Refresh(false) || pop.Refresh(false) {
		t.Fatal("Refresh must rebuild once, then only after a change")
	}
	return cat, idx, pop
}

func cos(x float32) float32 { return float32(cosf(float64(x))) }
func sin(x float32) float32 { return float32(sinf(float64(x))) }

func TestPopularityOrderAndFilter(t *testing.T) {
	_, _, pop := fixture(t)
	var got []uint32
	var scores []float32
	pop.Top(ann.FilterFunc(func(id uint32) bool { return id%2 == 0 }), 0, func(id uint32, s float32) bool {
		got = append(got, id)
		scores = append(scores, s)
		return len(got) < 3
	})
	if len(got) != 3 || got[0] != 98 || got[1] != 96 || got[2] != 94 {
		t.Fatalf("top even = %v", got)
	}
	if scores[0] != 98.0/99 {
		t.Fatalf("score %v, want popularity relative to the top item", scores[0])
	}
}

func TestRetrieveColdUsesPopularity(t *testing.T) {
	cat, idx, pop := fixture(t)
	r := New(cat, idx, pop, Config{ANN: 5, Popular: 2})
	var s Scratch
	var l pipeline.List
	req := &pipeline.Request{Exclude: []uint32{98}}
	q, src := r.Query(nil, &Signals{}, &s, nil)
	if len(q) != 0 || src != pipeline.SourceNone {
		t.Fatalf("cold query %v %v", q, src)
	}
	r.Retrieve(req, q, src, nil, nil, nil, &s, &l)
	want := []uint32{97, 96, 95, 94, 93} // 99 is out of stock, 98 excluded
	if len(l.IDs) != 5 {
		t.Fatalf("got %v", l.IDs)
	}
	for i := range want {
		if l.IDs[i] != want[i] || l.Sources[i] != pipeline.SourcePopular {
			t.Fatalf("got %v, want %v", l.IDs, want)
		}
	}
}

func TestRetrievePersonalised(t *testing.T) {
	cat, idx, pop := fixture(t)
	r := New(cat, idx, pop, Config{ANN: 4, Popular: 3})
	var s Scratch
	var l pipeline.List
	ctxItem, _ := cat.Items().Lookup("i20")
	sig := &Signals{ContextItem: ctxItem, HasContextItem: true}
	q, src := r.Query(nil, sig, &s, nil)
	if src != pipeline.SourceItem || len(q) != 2 {
		t.Fatalf("query %v %v", q, src)
	}
	req := &pipeline.Request{Exclude: []uint32{ctxItem}}
	r.Retrieve(req, q, src, nil, nil, nil, &s, &l)
	if len(l.IDs) != 7 {
		t.Fatalf("want 4 ANN + 3 popular, got %v", l.IDs)
	}
	seen := map[uint32]bool{}
	for i, id := range l.IDs {
		if seen[id] || id == ctxItem || !cat.Available(id) {
			t.Fatalf("bad candidate %d in %v", id, l.IDs)
		}
		seen[id] = true
		if i < 4 && (l.Sources[i] != pipeline.SourceItem || (id != 21 && id != 18 && id != 22 && id != 17)) {
			t.Fatalf("ANN part should be the in-stock neighbours of i20 (i19 is out of stock): %v", l.IDs[:4])
		}
	}
	// A user embedding joins the query: a user pointing at item 50's direction pulls it in.
	var row features.UserRow
	row.Emb = append(row.Emb, cat.Embedding(50, nil)...)
	q, src = r.Query(&row, &Signals{}, &s, nil)
	l.Reset()
	r.Retrieve(&pipeline.Request{}, q, src, nil, nil, nil, &s, &l)
	if src != pipeline.SourceANN || l.IDs[0] != 50 {
		t.Fatalf("user query: %v src %v", l.IDs, src)
	}
}

func TestRerankScoresBySimilarity(t *testing.T) {
	cat, idx, pop := fixture(t)
	r := New(cat, idx, pop, Config{})
	var s Scratch
	var l pipeline.List
	q := cat.Embedding(10, nil)
	r.Rerank([]uint32{50, 10, 11}, q, &s, &l)
	if l.Scores[1] < 0.999 || l.Scores[0] > -0.8 || l.Sources[0] != pipeline.SourceRequest {
		t.Fatalf("scores %v", l.Scores)
	}
}

func TestRetrieveCoVisitFirst(t *testing.T) {
	cat, idx, pop := fixture(t)
	r := New(cat, idx, pop, Config{ANN: 3, Popular: 2})
	var s Scratch
	var l pipeline.List
	var cov pipeline.SparseScores
	cov.Reset()
	cov.Put(5, 1)
	cov.Put(9, 0.9) // out of stock: skipped
	cov.Put(6, 0.5)
	r.Retrieve(&pipeline.Request{Exclude: []uint32{6}}, nil, pipeline.SourceNone, &cov, nil, nil, &s, &l)
	if l.IDs[0] != 5 || l.Sources[0] != pipeline.SourceCoVisit || l.Retrieval[0] != 1 || l.IDs[1] != 99-1 {
		t.Fatalf("got %v %v", l.IDs, l.Sources)
	}
	if got := pop.Score(98); got != 98.0/99 {
		t.Fatalf("Score(98) = %v", got)
	}
}

// TestRetrieveRecentItems: the session's own items join the candidates after the
// co-visited ones, unless excluded or out of stock, each once.
func TestRetrieveRecentItems(t *testing.T) {
	cat, idx, pop := fixture(t)
	r := New(cat, idx, pop, Config{ANN: 3, Popular: 2})
	var s Scratch
	var l pipeline.List
	var cov, recent pipeline.SparseScores
	cov.Reset()
	recent.Reset()
	cov.Put(5, 1)
	recent.Put(7, 1)
	recent.Put(9, 0.8) // out of stock: skipped
	recent.Put(6, 0.5) // excluded
	recent.Put(4, 0.25)
	r.Retrieve(&pipeline.Request{Exclude: []uint32{6}}, nil, pipeline.SourceNone, &cov, &recent, nil, &s, &l)
	if len(l.IDs) < 3 || l.IDs[0] != 5 || l.IDs[1] != 7 || l.IDs[2] != 4 ||
		l.Sources[1] != pipeline.SourceRecent || l.Retrieval[1] != 1 || l.Retrieval[2] != 0.25 {
		t.Fatalf("got %v %v %v", l.IDs, l.Sources, l.Retrieval)
	}
	seen := map[uint32]bool{}
	for _, id := range l.IDs {
		if seen[id] || id == 6 || id == 9 {
			t.Fatalf("candidate %d twice, excluded or out of stock: %v", id, l.IDs)
		}
		seen[id] = true
	}
}

// TestRetrieveAffinity: popular items of the session's categories join the candidates
// after the globally popular ones, within the scan bound, available and not excluded.
func TestRetrieveAffinity(t *testing.T) {
	cat := catalog.New(catalog.Config{})
	for i := 0; i < 100; i++ {
		c := "c" + strconv.Itoa(i%4) // c3 holds i3, i7, ..., the least popular of each four
		if _, err := cat.Upsert(&catalog.Item{ID: "i" + strconv.Itoa(i), InStock: i != 95,
			Features:   []catalog.Feature{{Name: "popularity", Value: float32(i%4*-1000 + i)}},
			Attributes: []catalog.Attribute{{Name: "category", Value: c}}}); err != nil {
			t.Fatal(err)
		}
	}
	pop := NewPopularity(cat, "popularity")
	pop.Refresh(true)
	ai, _ := cat.AttributeIndex("category")
	id := func(s string) uint32 { v, _ := cat.Items().Lookup(s); return v }
	var aff pipeline.Affinity
	aff.Reset()
	aff.Attr = ai
	aff.Add(cat.AttributeCode(ai, id("i3")), 1)
	r := New(cat, nil, pop, Config{ANN: 5, Popular: 5, Affinity: 3, AffinityScan: 100})
	var s Scratch
	var l pipeline.List
	r.Retrieve(&pipeline.Request{Exclude: []uint32{id("i99")}}, nil, pipeline.SourceNone, nil, nil, &aff, &s, &l)
	// 5 popular items of c0 (i96, i92, ...), then the best of c3: i99 excluded, i95 out of stock.
	var affIDs []string
	for i, x := range l.IDs {
		if l.Sources[i] == pipeline.SourceAffinity {
			affIDs = append(affIDs, cat.ItemName(x))
		}
	}
	if len(l.IDs) != 8 || strings.Join(affIDs, ",") != "i91,i87,i83" {
		t.Fatalf("candidates %v, affinity ones %v", l.IDs, affIDs)
	}
	// The scan bound: c3's items start at rank 75 of 100, beyond a scan of 50.
	r = New(cat, nil, pop, Config{ANN: 5, Popular: 5, Affinity: 3, AffinityScan: 50})
	l.Reset()
	r.Retrieve(&pipeline.Request{}, nil, pipeline.SourceNone, nil, nil, &aff, &s, &l)
	if len(l.IDs) != 5 {
		t.Fatalf("the scan bound was not kept: %v", l.IDs)
	}
}
