package stages

import (
	"math"
	"testing"

	"github.com/podium-rank/podium/engine/catalog"
	"github.com/podium-rank/podium/engine/pipeline"
)

type fakeRT struct{}

func (fakeRT) Column(name string) (int, bool) {
	if name == "item_clicks_1h" {
		return 0, true
	}
	return 0, false
}

func (fakeRT) Gather(ids []uint32, cols []int, now int64, dst []float32) []float32 {
	for _, id := range ids {
		dst = append(dst, float32(id)*10+float32(now))
	}
	return dst
}

func TestFeaturePlanFill(t *testing.T) {
	cat := catalog.New(catalog.Config{Dim: 2})
	for i, p := range []float32{5, 7} {
		if _, err := cat.Upsert(&catalog.Item{ID: string(rune('a' + i)), Embedding: []float32{1, float32(i)}, InStock: true,
			Features: []catalog.Feature{{Name: "price", Value: p}}, Attributes: []catalog.Attribute{{Name: "brand", Value: "x"}}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cat.UpsertUser(&catalog.User{ID: "u", Features: []catalog.Feature{{Name: "age", Value: 40}}}); err != nil {
		t.Fatal(err)
	}
	plan := NewFeaturePlan([]string{"price", "retrieval_score", "retriever", "user.age", "ctx.hour", "item_clicks_1h", "later", "position", "covisit_score", "popularity_score", "session_score", "affinity_score"}, Sources{Catalog: cat, Realtime: fakeRT{},
		Popularity: func(id uint32) float32 { return float32(id) / 2 }})
	env := &pipeline.Env{Items: cat, Now: 1}
	env.Request.Context = []pipeline.ContextValue{{Key: "hour", Num: 13, IsNum: true}}
	uid, _ := cat.Users().Lookup("u")
	env.HasUser = cat.User(uid, &env.User)
	var l pipeline.List
	l.Add(1, 0.5, pipeline.SourceANN)
	l.Add(0, 0.25, pipeline.SourcePopular)
	env.CoVisit.Reset()
	env.CoVisit.Put(0, 0.75)
	env.Recent.Reset()
	env.Recent.Put(1, 0.4)
	env.Affinity.Reset()
	env.Affinity.Attr, _ = cat.AttributeIndex("brand")
	env.Affinity.Add(cat.AttributeCode(env.Affinity.Attr, 0), 0.6) // both items are brand x
	var s Scratch
	got := plan.Fill(env, &l, &s, nil)
	nan := float32(math.NaN())
	want := []float32{7, 5, 0.5, 0.25, 1, 2, 40, 40, 13, 13, 11, 1, nan, nan, 0, 1, 0, 0.75, 0.5, 0, 0.4, 0, 0.6, 0.6}
	for i := range want {
		if got[i] != want[i] && !(want[i] != want[i] && got[i] != got[i]) {
			t.Fatalf("Fill = %v, want %v", got, want)
		}
	}
	// A feature that arrives after the plan was made is picked up.
	if err := cat.SetItemFeature(0, "later", 3); err != nil {
		t.Fatal(err)
	}
	got = plan.Fill(env, &l, &s, got)
	if got[13] != 3 {
		t.Fatalf("late feature: %v", got[12:14])
	}
	if a := testing.AllocsPerRun(100, func() { got = plan.Fill(env, &l, &s, got) }); a != 0 {
		t.Fatalf("Fill allocates %.1f times", a)
	}
	ai, _ := cat.AttributeIndex("brand")
	codes := AttributeCodes(cat, []int{ai, -1}, &l, nil)
	if len(codes) != 4 || codes[0] != 0 || codes[1] != 0 || codes[2] != -1 {
		t.Fatalf("codes %v", codes)
	}
	if emb := Embeddings(cat, &l, nil); len(emb) != 4 || emb[1] != 1 || emb[3] != 0 {
		t.Fatalf("embeddings %v", emb)
	}
}
