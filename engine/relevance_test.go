package engine

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/podium-rank/podium/engine/catalog"
	"github.com/podium-rank/podium/engine/events"
	"github.com/podium-rank/podium/engine/pipeline"
)

// noEmbeddingEngine serves 1000 items without embeddings in 10 categories (item i in
// c<i mod 10>), with a long-tailed popularity: item i's is 1/(1+i).
func noEmbeddingEngine(t *testing.T) *Engine {
	t.Helper()
	e, err := New(Config{Index: "none"})
	if err != nil {
		t.Fatal(err)
	}
	items := make([]catalog.Item, 1000)
	for i := range items {
		c := i % 10
		items[i] = catalog.Item{ID: "i" + strconv.Itoa(i), InStock: true,
			Features:   []catalog.Feature{{Name: "popularity", Value: 1000 / float32(1+i)}},
			Attributes: []catalog.Attribute{{Name: "category", Value: "c" + strconv.Itoa(c)}}}
	}
	if err := e.UpsertItems(items); err != nil {
		t.Fatal(err)
	}
	if err := e.OpenEvents("", events.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	e.SetReady()
	return e
}

func categoryCount(e *Engine, r *Ranking, want string) int {
	ai, _ := e.Catalog().AttributeIndex("category")
	n := 0
	for _, id := range r.List.IDs {
		if e.Catalog().AttributeValue(ai, id) == want {
			n++
		}
	}
	return n
}

// TestSessionCategoryWithoutEmbeddings: in a catalog without embeddings and a session with
// no co-visitation history, viewing two items of category c9 fills the next top-20 with
// that category (affinity_score, and the "affinity" retriever for its items beyond the
// popular candidates), the viewed items included (session_score); with affinity off, only
// the category's share of the globally popular items is.
func TestSessionCategoryWithoutEmbeddings(t *testing.T) {
	e := noEmbeddingEngine(t)
	now := time.Now()
	body := fmt.Sprintf(`[{"type":"view","session_id":"s1","item_id":"i9","ts":%q},{"type":"view","session_id":"s1","item_id":"i19","ts":%q}]`,
		now.Add(-time.Minute).Format(time.RFC3339), now.Format(time.RFC3339))
	if res, err := e.Events().Ingest([]byte(body), now); err != nil || res.Accepted != 2 {
		t.Fatalf("ingest %+v %v", res, err)
	}
	r, err := e.Rank(&RankRequest{SessionID: "s1", K: 20})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Release(r)
	if n := categoryCount(e, r, "c9"); n < 15 {
		t.Fatalf("%d of 20 items of the session's category c9", n)
	}
	var sources [pipeline.NumSources]int
	for _, s := range r.List.Sources {
		sources[s]++
	}
	// Candidates: the 2 viewed items, 500 popular ones (no query vector), and 50 more of c9.
	if sources[pipeline.SourceRecent] != 2 || r.Retrieved != 552 {
		t.Fatalf("sources of the top 20 %v, %d candidates", sources, r.Retrieved)
	}

	// The same with affinity off: the control that shows the test can fail.
	e.cfg.AffinityAttribute = "-"
	r2, err := e.Rank(&RankRequest{SessionID: "s1", K: 20})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Release(r2)
	if n := categoryCount(e, r2, "c9"); n != 2 {
		t.Fatalf("without affinity %d items of c9, want the 2 viewed (i9, i19: they are in the global top 20 too)", n)
	}
	if r2.Retrieved != 502 {
		t.Fatalf("without affinity %d candidates, want 502", r2.Retrieved)
	}
}
