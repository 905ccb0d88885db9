package events

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSessionVectorMovesTowardClickedItems(t *testing.T) {
	g, cat := memIngestor(t, 8, DefaultConfig())
	st := g.State()
	emb := func(name string) []float32 { return cat.Embedding(dense(t, cat, name), nil) }

	v := st.SessionVector("", "s1", t0, nil)
	eq(t, len(v), 0, "vector of an unknown session")

	ingest(t, g, 0, ev("click", "", "s1", "i0", 0))
	v = st.SessionVector("", "s1", t0, nil)
	near(t, cosine(v, emb("i0")), 1, 1e-6, "cosine to the only clicked item")

	// Clicks on i1 pull the vector toward i1 and away from i0.
	before := cosine(v, emb("i1"))
	ingest(t, g, time.Minute, ev("click", "", "s1", "i1", time.Minute))
	v = st.SessionVector("", "s1", t0.Add(time.Minute), nil)
	after := cosine(v, emb("i1"))
	truth(t, after > before+0.3, "cosine to i1 went from %.3f to %.3f", before, after)

	// Exactly the weighted mean: i0 clicked 61 min before now (weight 2·2^(-61/30)), i1
	// clicked 60 min before... here both are clicks, so only the ages differ.
	now := t0.Add(61 * time.Minute)
	v = st.SessionVector("", "s1", now, nil)
	w0, w1 := 2*math.Exp2(-61.0/30), 2*math.Exp2(-60.0/30)
	e0, e1 := emb("i0"), emb("i1")
	for i := range v {
		want := (w0*float64(e0[i]) + w1*float64(e1[i])) / (w0 + w1)
		near(t, float64(v[i]), want, 1e-5, "v[%d]", i)
	}

	// A purchase weighs more than a view of the same age.
	ingest(t, g, 2*time.Hour, ev("view", "u1", "", "i2", 2*time.Hour), ev("purchase", "u1", "", "i3", 2*time.Hour))
	v = st.SessionVector("u1", "", t0.Add(2*time.Hour), nil)
	truth(t, cosine(v, emb("i3")) > cosine(v, emb("i2")), "purchase does not outweigh view: %v", v)

	// A user's vector merges the user's and the anonymous session's history.
	merged := st.SessionVector("u1", "s1", t0.Add(2*time.Hour), nil)
	truth(t, cosine(merged, emb("i1")) > cosine(v, emb("i1")) && cosine(merged, emb("i3")) > 0.5,
		"merged vector %v, user's %v", merged, v)
}

func TestRecentKeepsTheLastN(t *testing.T) {
	cfg := DefaultConfig()
	cfg.State.RecentItems = 3
	g, cat := memIngestor(t, 8, cfg)
	for k := range 5 {
		ingest(t, g, time.Duration(k)*time.Second, ev("view", "u", "", fmt.Sprintf("i%d", k), time.Duration(k)*time.Second))
	}
	got := g.State().Recent("u", "", nil)
	eq(t, len(got), 3, "recent entries")
	for i, want := range []string{"i4", "i3", "i2"} {
		eq(t, got[i].Item, dense(t, cat, want), "recent[%d]", i)
		eq(t, got[i].Type, TypeView, "type")
	}
	eq(t, got[0].TS, t0.Add(4*time.Second).UnixNano(), "ts")
}

func TestExclusionsByTypeAndWindow(t *testing.T) {
	g, cat := memIngestor(t, 8, DefaultConfig())
	st := g.State()
	ingest(t, g, 0, ev("purchase", "u1", "", "i1", 0), ev("click", "u1", "", "i2", 0),
		ev("purchase", "", "s9", "i3", 0))
	ex := func(user, session string, at time.Duration) []uint32 {
		got := st.AppendExcluded(user, session, t0.Add(at), nil)
		slices.Sort(got)
		return got
	}
	eq(t, ex("u1", "", time.Hour), []uint32{dense(t, cat, "i1")}, "purchased is excluded, clicked is not")
	eq(t, ex("u1", "s9", time.Hour), []uint32{dense(t, cat, "i1"), dense(t, cat, "i3")}, "user and session merged")
	eq(t, ex("u1", "", 29*24*time.Hour), []uint32{dense(t, cat, "i1")}, "after 29 days")
	eq(t, len(ex("u1", "", 31*24*time.Hour)), 0, "exclusions after 31 days")
	eq(t, len(ex("u2", "", time.Hour)), 0, "another user's exclusions")

	cfg := DefaultConfig()
	cfg.State.Exclude = &TypeWindows{Impression: time.Hour, Click: 10 * time.Minute}
	cfg.State.MaxExcluded = 3
	g, cat = memIngestor(t, 8, cfg)
	st = g.State()
	ingest(t, g, 0, `{"type":"impression","user_id":"u","item_ids":["i1","i2","nope"],"ts":"2026-11-22T10:00:00Z"}`,
		ev("click", "u", "", "i3", 0), ev("purchase", "u", "", "i4", 0))
	eq(t, ex("u", "", 5*time.Minute), []uint32{dense(t, cat, "i1"), dense(t, cat, "i2"), dense(t, cat, "i3")}, "impressions and clicks")
	eq(t, ex("u", "", 30*time.Minute), []uint32{dense(t, cat, "i1"), dense(t, cat, "i2")}, "click window over")
	ingest(t, g, time.Minute, `{"type":"impression","user_id":"u","item_ids":["i5","i6"],"ts":"2026-11-22T10:01:00Z"}`)
	eq(t, ex("u", "", 2*time.Minute), []uint32{dense(t, cat, "i1"), dense(t, cat, "i5"), dense(t, cat, "i6")},
		"MaxExcluded keeps the ones expiring last")
}

func TestTrendingDecays(t *testing.T) {
	g, cat := memIngestor(t, 8, DefaultConfig())
	st := g.State()
	i1, i2 := dense(t, cat, "i1"), dense(t, cat, "i2")
	var lines []string
	for k := range 10 { // ten users: one user's identical clicks would be duplicates
		lines = append(lines, ev("click", fmt.Sprintf("u%d", k), "", "i1", 0))
	}
	lines = append(lines, ev("view", "u", "", "i2", 0))
	ingest(t, g, 0, lines...)
	near(t, st.ItemCount(i1, TypeClick, 0, t0), 10, 1e-4, "clicks at once (1h)")
	near(t, st.ItemCount(i1, TypeClick, 0, t0.Add(time.Hour)), 5, 1e-4, "clicks after one half-life")
	near(t, st.ItemCount(i1, TypeClick, 1, t0.Add(time.Hour)), 10*math.Exp2(-1.0/24), 1e-4, "24h window after 1h")
	near(t, st.ItemCount(i1, TypeClick, 0, t0.Add(5*time.Hour)), 10.0/32, 1e-5, "after five half-lives")
	near(t, st.ItemCount(i2, TypeClick, 0, t0), 0, 0, "i2 clicks")
	near(t, st.ItemCount(i2, TypeView, 0, t0), 1, 1e-6, "i2 views")

	// An old event counts less at once; an event in the past does not disturb newer ones.
	ingest(t, g, time.Hour, ev("click", "u", "", "i2", -time.Hour))
	near(t, st.ItemCount(i2, TypeClick, 0, t0.Add(time.Hour)), 0.25, 1e-6, "a click two half-lives old")

	// Gather agrees, column-major.
	names := []string{"item_clicks_1h", "item_views_24h", "item_ctr_1h", "item_score_24h"}
	cols := make([]int, len(names))
	for i, n := range names {
		c, found := st.FeatureColumn(n)
		truth(t, found, "no feature %s", n)
		cols[i] = c
	}
	now := t0.Add(time.Hour)
	got := st.Gather([]uint32{i1, i2, dense(t, cat, "i7")}, cols, now, nil)
	eq(t, len(got), 12, "matrix size")
	near(t, float64(got[0]), 5, 1e-4, "i1 clicks_1h")
	near(t, float64(got[1]), 0.25, 1e-5, "i2 clicks_1h")
	near(t, float64(got[2]), 0, 0, "i7 clicks_1h")
	near(t, float64(got[3]), 0, 0, "i1 views_24h")
	near(t, float64(got[4]), math.Exp2(-1.0/24), 1e-5, "i2 views_24h")
	p, m := 0.02, 50.0
	near(t, float64(got[6]), (5+m*p)/(5+m), 1e-5, "i1 CTR without impressions (clicks bound it)")
	near(t, float64(got[8]), p, 1e-6, "CTR prior of an item without events")
	near(t, float64(got[9]), 2*10*math.Exp2(-1.0/24), 1e-3, "i1 score_24h")
}

func TestCTRFromImpressionsAndClicks(t *testing.T) {
	g, cat := memIngestor(t, 8, DefaultConfig())
	st := g.State()
	var lines []string
	for range 100 {
		lines = append(lines, `{"type":"impression","session_id":"s","item_ids":["i1","i2"],"ts":"2026-11-22T10:00:00Z"}`)
	}
	for k := range 20 {
		lines = append(lines, ev("click", "", "s", "i1", time.Duration(k)*time.Millisecond))
		lines = append(lines, ev("click", "", fmt.Sprintf("s%d", k), "i1", 0))
	}
	ingest(t, g, 0, lines...)
	col, _ := st.FeatureColumn("item_ctr_24h")
	got := st.Gather([]uint32{dense(t, cat, "i1"), dense(t, cat, "i2")}, []int{col}, t0, nil)
	// Session s's 20 clicks fall in the same second: all but one are duplicates.
	near(t, float64(got[0]), (21+50*0.02)/(100+50), 1e-5, "i1 CTR")
	near(t, float64(got[1]), (0+50*0.02)/(100+50), 1e-5, "i2 CTR")
	ucol, found := st.UserFeatureColumn("user_impressions_1h")
	truth(t, found, "no user_impressions_1h")
	ccol, _ := st.UserFeatureColumn("user_clicks_1h")
	u := st.GatherUser("", "s", []int{ucol, ccol}, t0.Add(time.Hour), nil)
	near(t, float64(u[0]), 50, 1e-3, "session impressions after 1h")
	near(t, float64(u[1]), 0.5, 1e-3, "session clicks after 1h")
	eq(t, g.Metrics(t0).Duplicates, uint64(19), "duplicates dropped")
	eq(t, st.GatherUser("", "other", []int{ucol}, t0, nil), []float32{0}, "unknown session")
}

func TestPopularityScoreBlendsStaticAndLive(t *testing.T) {
	g, cat := memIngestor(t, 8, DefaultConfig())
	st := g.State()
	order := func(score func(uint32) float32) []string {
		ids := []uint32{}
		for id := range uint32(cat.ItemCap()) {
			ids = append(ids, id)
		}
		slices.SortStableFunc(ids, func(a, b uint32) int {
			if score(a) > score(b) {
				return -1
			} else if score(a) < score(b) {
				return 1
			}
			return 0
		})
		var out []string
		for _, id := range ids[:3] {
			out = append(out, cat.ItemName(id))
		}
		return out
	}
	// No events: static popularity (n-k) decides.
	eq(t, order(st.PopularityScore(t0)), []string{"i0", "i1", "i2"}, "order without events")
	// A burst of purchases on i7 makes it the most popular once the mass passes the prior.
	var lines []string
	for k := range 50 {
		lines = append(lines, ev("purchase", fmt.Sprintf("u%d", k), "", "i7", 0))
	}
	ingest(t, g, 0, lines...)
	eq(t, order(st.PopularityScore(t0))[0], "i7", "top item after the burst")
	// Days later the burst has decayed (24h half-life) below the prior: static order again.
	eq(t, order(st.PopularityScore(t0.Add(10*24*time.Hour))), []string{"i0", "i1", "i2"}, "order after decay")
}

func TestCoVisitation(t *testing.T) {
	g, cat := memIngestor(t, 8, DefaultConfig())
	st := g.State()
	ingest(t, g, time.Hour,
		ev("view", "", "s1", "i1", 0), ev("view", "", "s1", "i2", time.Minute),
		ev("view", "", "s2", "i1", 0), ev("view", "", "s2", "i3", time.Minute),
		ev("view", "", "s3", "i1", 0), ev("click", "", "s3", "i3", 2*time.Minute),
		// Too far apart to count: i1 then i4 an hour later.
		ev("view", "", "s4", "i1", 0), ev("view", "", "s4", "i4", time.Hour),
	)
	i1, i2, i3 := dense(t, cat, "i1"), dense(t, cat, "i2"), dense(t, cat, "i3")
	got := st.CoVisited([]uint32{i1}, 10, nil)
	eq(t, len(got), 2, "neighbours of i1 (%v)", got)
	eq(t, got[0].ID, i3, "top neighbour")
	eq(t, got[1].ID, i2, "second neighbour")
	truth(t, got[0].Score > got[1].Score, "scores %v", got)
	// Symmetric, and the query items themselves never come back.
	back := st.CoVisited([]uint32{i3}, 10, nil)
	eq(t, back[0].ID, i1, "neighbour of i3")
	eq(t, len(st.CoVisited([]uint32{i1, i3}, 10, nil)), 1, "neighbours of {i1,i3}")
	// For a session: s5 viewed i1 just now, so covisit candidates are i3 and i2.
	ingest(t, g, 2*time.Hour, ev("view", "", "s5", "i1", 2*time.Hour))
	sess := st.SessionCoVisited("", "s5", nil, t0.Add(2*time.Hour), 1, nil)
	eq(t, sess, []Scored{{i3, 1}}, "session covisit top 1")
	// A context item seeds co-visitation for a request with no session at all.
	seeded := st.SessionCoVisited("", "", []uint32{i3}, t0.Add(2*time.Hour), 10, nil)
	eq(t, len(seeded) > 0 && seeded[0].ID == i1, true, "neighbours of the context item i3: %v", seeded)
	for _, s := range seeded {
		truth(t, s.ID != i3, "the seed came back: %v", seeded)
	}
	items, pairs := st.CoVisitSize()
	truth(t, items == 3 && pairs == 4, "covisit size %d items %d pairs", items, pairs)
}

func TestCoVisitListsAreBounded(t *testing.T) {
	c := newCoVisit(3)
	for b := uint32(1); b <= 10; b++ {
		for range int(b) { // item b is co-visited b times with item 0
			c.add(0, b, 1)
		}
	}
	var ids []uint32
	c.visit(0, func(id uint32, _ float32) { ids = append(ids, id) })
	eq(t, len(ids), 3, "neighbours kept")
	slices.Sort(ids)
	eq(t, ids, []uint32{8, 9, 10}, "Space-Saving keeps the heavy pairs")
}

func TestItemUpdatesChangeTheCatalog(t *testing.T) {
	g, cat := memIngestor(t, 8, DefaultConfig())
	i3 := dense(t, cat, "i3")
	truth(t, cat.Available(i3), "i3 starts available")
	res := ingest(t, g, 0, `{"type":"item_update","item_id":"i3","stock":0,"price":12.5,"attributes":{"category":"sale","color":"red"}}`)
	eq(t, res.AcceptedByType[TypeItemUpdate], 1, "accepted updates")
	truth(t, !cat.Available(i3), "i3 is still available after stock 0")
	col, _ := cat.FeatureColumn("price")
	eq(t, cat.ItemFeature(i3, col), float32(12.5), "price")
	ai, _ := cat.AttributeIndex("category")
	eq(t, cat.AttributeValue(ai, i3), "sale", "category")
	ci, found := cat.AttributeIndex("color")
	truth(t, found, "color attribute not created")
	eq(t, cat.AttributeValue(ci, i3), "red", "color")
	ingest(t, g, 0, `{"type":"item_update","item_id":"i3","stock":5}`)
	truth(t, cat.Available(i3), "i3 not back in stock")
}

func TestIngestResult(t *testing.T) {
	g, _ := memIngestor(t, 8, DefaultConfig())
	body := "[" + strings.Join([]string{
		ev("click", "u", "", "i1", 0),
		ev("click", "u", "", "nope", 0),
		`{"type":"like"}`,
		ev("view", "", "s", "i2", 0),
		`{"type":"impression","item_ids":["i1","zzz"]}`,
		`{"type":"item_update","item_id":"ghost","stock":1}`,
	}, ",") + "]"
	res, err := g.Ingest([]byte(body), t0)
	ok(t, err)
	eq(t, res.Accepted, 3, "accepted")
	eq(t, res.Rejected, 3, "rejected")
	eq(t, res.AcceptedByType[TypeClick], 1, "accepted clicks")
	eq(t, res.RejectedByType[TypeClick], 1, "rejected clicks")
	eq(t, res.RejectedByType[TypeUnknown], 1, "rejected unknown")
	var pos []int
	var codes []string
	for _, r := range res.Rejections {
		pos, codes = append(pos, r.Index), append(codes, r.Code)
	}
	eq(t, pos, []int{1, 2, 5}, "rejected positions")
	eq(t, codes, []string{CodeUnknownItem, CodeUnknownType, CodeUnknownItem}, "codes")

	var decoded struct {
		Accepted       int            `json:"accepted"`
		Rejected       int            `json:"rejected"`
		AcceptedByType map[string]int `json:"accepted_by_type"`
		RejectedByType map[string]int `json:"rejected_by_type"`
		Errors         []Rejection    `json:"errors"`
	}
	out := res.AppendJSON(nil)
	ok(t, json.Unmarshal(out, &decoded))
	eq(t, decoded.AcceptedByType, map[string]int{"click": 1, "view": 1, "impression": 1}, "accepted_by_type in %s", out)
	eq(t, decoded.RejectedByType, map[string]int{"click": 1, "unknown": 1, "item_update": 1}, "rejected_by_type")
	eq(t, decoded.Errors, res.Rejections, "errors")

	m := g.Metrics(t0)
	eq(t, m.ByType[TypeClick], TypeCounts{"click", 1, 1}, "click metrics")
	eq(t, m.RejectedByCode, map[string]uint64{CodeUnknownItem: 2, CodeUnknownType: 1}, "by code")
	eq(t, m.Bodies, uint64(1), "bodies")

	_, err = g.Ingest([]byte("not json"), t0)
	isErr(t, err, ErrBadBody)
	eq(t, g.Metrics(t0).FailedBodies, uint64(1), "failed bodies")
}

func TestVariantClickThrough(t *testing.T) {
	cfg := DefaultConfig()
	g, cat := memIngestor(t, 8, cfg)
	st := g.State()
	i := func(n string) uint32 { return dense(t, cat, n) }
	st.RecordServed([]byte("r1"), "A", "u1", "", []uint32{i("i1"), i("i2"), i("i3")}, t0)
	st.RecordServed([]byte("r2"), "B", "u2", "", []uint32{i("i4"), i("i5")}, t0)
	st.RecordServed([]byte("r3"), "A", "", "s3", []uint32{i("i6")}, t0)
	ingest(t, g, time.Minute,
		`{"type":"impression","user_id":"u1","request_id":"r1","item_ids":["i1","i2","i3"],"ts":"2026-11-22T10:00:01Z"}`,
		`{"type":"impression","user_id":"u2","request_id":"r2","item_ids":["i4","i5"],"ts":"2026-11-22T10:00:01Z"}`,
		`{"type":"click","user_id":"u1","item_id":"i2","request_id":"r1","ts":"2026-11-22T10:00:02Z"}`,
		`{"type":"click","user_id":"u1","item_id":"i2","request_id":"r1","ts":"2026-11-22T10:00:03Z"}`, // counted once
		ev("click", "u1", "", "i3", 5*time.Second),                                                     // joined by user and item
		ev("click", "u1", "", "i7", 5*time.Second),                                                     // not served: no join
		ev("click", "", "s3", "i6", 6*time.Second),                                                     // joined by session
		`{"type":"impression","request_id":"unknown","item_ids":["i1"]}`,                               // joins nothing
	)
	ingest(t, g, 46*time.Minute, ev("click", "u2", "", "i4", 45*time.Minute)) // beyond the join window
	got := st.VariantCTR(t0.Add(50 * time.Minute))
	eq(t, got, []VariantStats{
		{Variant: "A", Requests: 2, ItemsServed: 4, Impressions: 3, Clicks: 3, CTR: 1, ServedCTR: 0.75},
		{Variant: "B", Requests: 1, ItemsServed: 2, Impressions: 2},
	}, "variant stats")
	// The window slides: two hours later nothing is left.
	for _, v := range st.VariantCTR(t0.Add(2 * time.Hour)) {
		eq(t, v.Requests+v.Clicks+v.Impressions, uint64(0), "counts of %s after the window", v.Variant)
	}
}

func TestServedLogIsBounded(t *testing.T) {
	cfg := DefaultConfig()
	cfg.State.Served.Capacity = 4
	cfg.State.Served.MaxVariants = 3
	g, cat := memIngestor(t, 8, cfg)
	st := g.State()
	i1 := dense(t, cat, "i1")
	for k := range 10 {
		st.RecordServed(fmt.Appendf(nil, "r%d", k), fmt.Sprintf("v%d", k), "u", "", []uint32{i1}, t0)
	}
	eq(t, len(st.served.byReq), 4, "requests remembered")
	names := []string{}
	for _, v := range st.VariantCTR(t0) {
		names = append(names, v.Variant)
	}
	eq(t, names, []string{"other", "v0", "v1"}, "variants")
	// r0 was overwritten: its click joins nothing; r9's does.
	ingest(t, g, 0, `{"type":"click","user_id":"x","item_id":"i1","request_id":"r0"}`,
		`{"type":"click","user_id":"y","item_id":"i1","request_id":"r9"}`)
	var clicks uint64
	for _, v := range st.VariantCTR(t0) {
		clicks += v.Clicks
	}
	eq(t, clicks, uint64(1), "joined clicks")
}

func TestConfigValidation(t *testing.T) {
	cat := testCatalog(t, 2)
	for _, c := range []StateConfig{
		{Windows: []Window{{"1h", 0}}},
		{Windows: []Window{{"a", time.Hour}, {"a", time.Minute}}},
		{PopularityWindow: "7d"},
		{SessionWeights: TypeWeights{View: -1}},
	} {
		_, err := NewState(cat, c)
		truth(t, err != nil, "config %+v accepted", c)
	}
	st, err := NewState(cat, StateConfig{})
	ok(t, err)
	names := st.FeatureNames()
	for _, want := range []string{"item_clicks_1h", "item_views_24h", "item_purchases_24h", "item_add_to_carts_1h", "item_ctr_24h", "item_score_1h"} {
		truth(t, slices.Contains(names, want), "FeatureNames lacks %s: %v", want, names)
	}
	truth(t, slices.Contains(st.UserFeatureNames(), "user_clicks_24h"), "user features %v", st.UserFeatureNames())
	truth(t, st.IsFeature("user_views_1h") && !st.IsFeature("price"), "IsFeature")
}

func TestGatherAllMixesCatalogAndRealTimeFeatures(t *testing.T) {
	g, cat := memIngestor(t, 8, DefaultConfig())
	ingest(t, g, 0, ev("click", "u", "", "i2", 0), ev("click", "v", "", "i2", 0))
	ids := []uint32{dense(t, cat, "i2"), dense(t, cat, "i5")}
	got := g.State().GatherAll(ids, []string{"item_clicks_1h", "popularity", "nope", "item_ctr_24h"}, t0, nil)
	eq(t, len(got), 8, "matrix size")
	eq(t, got[0:2], []float32{2, 0}, "item_clicks_1h")
	eq(t, got[2:4], []float32{6, 3}, "popularity (n-k)")
	truth(t, math.IsNaN(float64(got[4])) && math.IsNaN(float64(got[5])), "unknown feature is not NaN: %v", got[4:6])
	near(t, float64(got[7]), 0.02, 1e-6, "ctr prior")
}

func TestSessionItems(t *testing.T) {
	g, cat := memIngestor(t, 8, DefaultConfig())
	st := g.State()
	ingest(t, g, time.Hour,
		ev("view", "", "s1", "i1", 0), ev("view", "", "s1", "i2", time.Minute),
		ev("add_to_cart", "", "s1", "i3", 2*time.Minute), ev("view", "", "s1", "i1", 3*time.Minute),
		ev("view", "", "other", "i4", 3*time.Minute))
	now := t0.Add(3 * time.Minute)
	i1, i2, i3 := dense(t, cat, "i1"), dense(t, cat, "i2"), dense(t, cat, "i3")
	got := st.SessionItems("", "s1", now, 10, nil)
	// The cart weighs 4, a view 1; i1's second view counts once, at its newest time.
	eq(t, len(got), 3, "items of s1 (%v)", got)
	eq(t, got[0], Scored{i3, 1}, "the carted item first")
	truth(t, got[1].ID == i1 && got[2].ID == i2, "then the views, newest first: %v", got)
	near(t, float64(got[1].Score), 0.25*math.Pow(2, 1.0/30), 1e-5, "a view just now against a cart a minute ago, 30 min half-life: %v", got)
	truth(t, got[2].Score < got[1].Score, "older view scores lower: %v", got)
	eq(t, len(st.SessionItems("", "s1", now, 1, nil)), 1, "bounded by n")
	eq(t, len(st.SessionItems("", "nobody", now, 10, nil)), 0, "no session")
	eq(t, len(st.SessionItems("", "s1", now, 0, nil)), 0, "n = 0")
}

// TestOldHistoryKeepsFiniteScores: a user back days later still gets the neighbours and
// items of their last visit, with finite scores in proportion (weights measured from now
// underflowed float32 and normalising them gave +Inf, which a plugin then returned).
func TestOldHistoryKeepsFiniteScores(t *testing.T) {
	g, cat := memIngestor(t, 8, DefaultConfig())
	st := g.State()
	ingest(t, g, time.Hour,
		ev("view", "u1", "old", "i1", 0), ev("view", "u1", "old", "i2", time.Minute),
		ev("view", "u2", "x", "i1", 0), ev("view", "u2", "x", "i3", time.Minute))
	later := t0.Add(5 * 24 * time.Hour)
	cv := st.SessionCoVisited("u1", "new", nil, later, 10, nil)
	truth(t, len(cv) > 0 && cv[0].ID == dense(t, cat, "i3"), "neighbours of last week's items: %v", cv)
	items := st.SessionItems("u1", "new", later, 10, nil)
	eq(t, len(items), 2, "last week's items (%v)", items)
	for _, s := range append(cv, items...) {
		truth(t, s.Score > 0 && s.Score <= 1 && !math.IsInf(float64(s.Score), 0), "score %v", s)
	}
	eq(t, items[0], Scored{dense(t, cat, "i2"), 1}, "the newest item scores 1")
}
