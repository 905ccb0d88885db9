package events

import (
	"cmp"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/podium-rank/podium/engine/catalog"
	"github.com/podium-rank/podium/engine/demo"
)

// topK returns the k available items most similar to q (brute force), leaving out exclude:
// what the engine's ANN retrieval would return for the session vector as the query.
func topK(cat *catalog.Catalog, q []float32, k int, exclude []uint32) []uint32 {
	type hit struct {
		id  uint32
		sim float64
	}
	var hits []hit
	var buf []float32
	for id := range uint32(cat.ItemCap()) {
		if !cat.Available(id) || slices.Contains(exclude, id) {
			continue
		}
		buf = cat.Embedding(id, buf[:0])
		hits = append(hits, hit{id, cosine(q, buf)})
	}
	slices.SortFunc(hits, func(a, b hit) int { return cmp.Compare(b.sim, a.sim) })
	out := make([]uint32, 0, k)
	for _, h := range hits[:min(k, len(hits))] {
		out = append(out, h.id)
	}
	return out
}

// TestClicksBringCategoryIntoAnonymousSession: clicks on items of one category turn an
// anonymous session's next top-20 (ANN over the session vector) toward that category, and
// a purchase or a stock-0 update removes items from every later list.
func TestClicksBringCategoryIntoAnonymousSession(t *testing.T) {
	dc := demo.Config{Items: 3000, Users: 10, Dim: 32, Clusters: 60, Categories: 12, Brands: 30,
		Spread: 0.35, OutOfStock: 0, Seed: 7}
	d := demo.Generate(dc)
	cat := catalog.New(catalog.Config{Dim: dc.Dim})
	for i := range d.Items {
		_, err := cat.Upsert(&d.Items[i])
		ok(t, err)
	}
	g, err := Open("", DefaultConfig(), cat)
	ok(t, err)
	st := g.State()
	ai, _ := cat.AttributeIndex("category")
	category := func(id uint32) string { return cat.AttributeValue(ai, id) }

	// Pick the category of item 0 and click five of its items, from two clusters.
	want := category(0)
	var clicked []string
	for i := range d.Items {
		if id := uint32(i); category(id) == want && len(clicked) < 5 {
			clicked = append(clicked, d.Items[i].ID)
		}
	}
	before := 0
	pop := st.PopularityScore(t0)
	var byPop []uint32
	for id := range uint32(cat.ItemCap()) {
		byPop = append(byPop, id)
	}
	slices.SortFunc(byPop, func(a, b uint32) int { return cmp.Compare(pop(b), pop(a)) })
	for _, id := range byPop[:20] {
		if category(id) == want {
			before++
		}
	}

	var lines []string
	for k, name := range clicked {
		lines = append(lines, ev("click", "", "anon", name, time.Duration(k)*time.Second))
	}
	ingest(t, g, 5*time.Second, lines...)
	now := t0.Add(6 * time.Second)
	q := st.SessionVector("", "anon", now, nil)
	eq(t, len(q), dc.Dim, "session vector length")
	top := topK(cat, q, 20, nil)
	in := 0
	for _, id := range top {
		if category(id) == want {
			in++
		}
	}
	t.Logf("category %s: %d of the cold top-20 by popularity, %d of the top-20 after 5 clicks", want, before, in)
	truth(t, in >= 15, "only %d of 20 items are in category %s after clicking it (%d before)", in, want, before)

	// Purchase the best match: it is excluded from then on. Set another's stock to 0: the
	// catalog drops it (the host enforces availability after the plugins).
	best, second := top[0], top[1]
	ingest(t, g, 7*time.Second, ev("purchase", "", "anon", cat.ItemName(best), 7*time.Second),
		fmt.Sprintf(`{"type":"item_update","item_id":%q,"stock":0}`, cat.ItemName(second)))
	ex := st.AppendExcluded("", "anon", t0.Add(8*time.Second), nil)
	eq(t, ex, []uint32{best}, "excluded after the purchase")
	q = st.SessionVector("", "anon", t0.Add(8*time.Second), q)
	after := topK(cat, q, 20, ex)
	truth(t, !slices.Contains(after, best) && !slices.Contains(after, second),
		"purchased or sold-out item still in the list: %v", after)
}
