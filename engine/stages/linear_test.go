package stages

import (
	"testing"

	"github.com/podium-rank/podium/engine/catalog"
	"github.com/podium-rank/podium/engine/pipeline"
)

func TestLinearBlend(t *testing.T) {
	cat := catalog.New(catalog.Config{})
	for _, id := range []string{"a", "b", "c"} {
		if _, err := cat.Upsert(&catalog.Item{ID: id, InStock: true}); err != nil {
			t.Fatal(err)
		}
	}
	st := NewLinear("rank", DefaultBlend, Sources{Catalog: cat, Popularity: func(id uint32) float32 { return float32(id) }})
	env := &pipeline.Env{Items: cat}
	env.Request.K = 3
	env.CoVisit.Reset()
	env.CoVisit.Put(0, 1) // a: co-visited
	var l pipeline.List
	l.Add(0, 0.1, pipeline.SourceCoVisit) // 0.1 + 1 + 0      = 1.1
	l.Add(1, 0.9, pipeline.SourceANN)     // 0.9 + 0 + 0.2    = 1.1 (tie: lower id first)
	l.Add(2, 0.5, pipeline.SourceANN)     // 0.5 + 0 + 0.4    = 0.9
	if err := st.Run(env, &l); err != nil {
		t.Fatal(err)
	}
	if l.IDs[0] != 0 || l.IDs[1] != 1 || l.IDs[2] != 2 || l.Scores[2] < 0.89 || l.Scores[2] > 0.91 {
		t.Fatalf("got %v %v", l.IDs, l.Scores)
	}
}
