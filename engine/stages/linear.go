package stages

import (
	"sync"

	"github.com/podium-rank/podium/engine/pipeline"
)

// Weight is one term of a linear blend.
type Weight struct {
	Feature string
	W       float32
}

// DefaultBlend is the engine's default rank stage when no pipeline is configured: cosine
// similarity to the query, plus co-visitation with the session's recent items (weighted
// 1.5, so an item co-visited as strongly as the best one beats a perfect similarity in the
// same category), plus half the session's own interest in the item (people come back to
// what they just looked at), plus half the session's interest in the item's category,
// plus a little popularity (static and live). Each term is on a 0..1 scale, so the weights
// read as trade-offs; popularity breaks near ties and ranks cold requests. RATIONALE.md,
// "Why this default blend?".
var DefaultBlend = []Weight{
	{FeatureRetrievalScore, 1},
	{FeatureCoVisit, 1.5},
	{FeatureSession, 0.5},
	{FeatureAffinity, 0.5},
	{FeaturePopularity, 0.2},
}

// Linear is the native weighted-sum rank stage: score = Σ w·feature, with missing (NaN)
// features counting as 0, then sorted. It is the default rank stage and the native twin of
// the rank/linear plugin. It is goroutine-safe.
type Linear struct {
	info    pipeline.StageInfo
	plan    *FeaturePlan
	weights []float32
	pool    sync.Pool
}

type linearScratch struct {
	s   Scratch
	mat []float32
}

// NewLinear returns a linear rank stage named name over the weights.
func NewLinear(name string, weights []Weight, src Sources) *Linear {
	names := make([]string, len(weights))
	ws := make([]float32, len(weights))
	for i, w := range weights {
		names[i], ws[i] = w.Feature, w.W
	}
	st := &Linear{
		info:    pipeline.StageInfo{Name: name, Kind: pipeline.KindRank, Plugin: "native/linear", Version: "native", Variant: "champion"},
		plan:    NewFeaturePlan(names, src),
		weights: ws,
	}
	st.pool.New = func() any { return new(linearScratch) }
	return st
}

// Info implements pipeline.Stage.
func (st *Linear) Info() pipeline.StageInfo { return st.info }

// Run implements pipeline.Stage.
func (st *Linear) Run(env *pipeline.Env, l *pipeline.List) error {
	sc := st.pool.Get().(*linearScratch)
	defer st.pool.Put(sc)
	n := l.Len()
	sc.mat = st.plan.Fill(env, l, &sc.s, sc.mat)
	for i := range l.Scores {
		l.Scores[i] = 0
	}
	for f, w := range st.weights {
		col := sc.mat[f*n : (f+1)*n]
		for i, x := range col {
			if x == x { // not NaN
				l.Scores[i] += w * x
			}
		}
	}
	l.SortByScore()
	return nil
}
