package stages

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/podium-rank/podium/engine/catalog"
	"github.com/podium-rank/podium/engine/pipeline"
	"github.com/podium-rank/podium/engine/plugin"
	"github.com/podium-rank/podium/sdk/abi"
)

// Callee is what a PluginStage calls: a started Wasm plugin (*plugin.Plugin), or a native Go
// twin of one with the same inputs and outputs (the baseline Wasm is measured against).
// Implementations must be goroutine-safe.
type Callee interface {
	Name() string
	Version() string
	Kind() abi.Kind
	Features() []string
	Attributes() []string
	Needs() abi.Needs
	Call(ctx context.Context, in *plugin.Input, out *plugin.Output) error
}

// PluginStage runs a started plugin as a pipeline stage: it materialises the inputs the
// plugin's manifest asks for, makes one call per request and applies the outputs of its
// kind (sdk/ABI.md §4). A fault (trap, timeout, bad output) comes back as an error, so the
// pipeline falls back. It is goroutine-safe; the plugin's pool bounds concurrency.
type PluginStage struct {
	info    pipeline.StageInfo
	p       Callee
	cat     *catalog.Catalog
	plan    *FeaturePlan
	attrs   []string
	needs   abi.Needs
	kind    pipeline.Kind
	scrPool sync.Pool
}

type pluginScratch struct {
	in     plugin.Input
	out    plugin.Output
	s      Scratch
	ai     []int
	sids   []string
	order  []int32
	listed []bool
	rows   []ruleRow
	tmp    pipeline.List
}

// KindOf maps an ABI kind to a pipeline kind.
func KindOf(k abi.Kind) (pipeline.Kind, error) {
	switch k {
	case abi.KindRank:
		return pipeline.KindRank, nil
	case abi.KindRules:
		return pipeline.KindRules, nil
	case abi.KindDiversity:
		return pipeline.KindDiversity, nil
	}
	return 0, fmt.Errorf("stages: unknown plugin kind %q", k)
}

// NewPluginStage wraps p as the stage named name. The plugin's effective features and
// attributes (manifest, overridden by params) decide what each call gathers.
func NewPluginStage(name string, p Callee, src Sources) (*PluginStage, error) {
	kind, err := KindOf(p.Kind())
	if err != nil {
		return nil, err
	}
	st := &PluginStage{
		info: pipeline.StageInfo{Name: name, Kind: kind, Plugin: p.Name(), Version: ShortVersion(p.Version()), Variant: "champion"},
		p:    p, cat: src.Catalog, plan: NewFeaturePlan(p.Features(), src),
		attrs: p.Attributes(), needs: p.Needs(), kind: kind,
	}
	st.scrPool.New = func() any { return new(pluginScratch) }
	return st, nil
}

// ShortVersion is the prefix of a plugin's sha256 version shown in responses.
func ShortVersion(v string) string {
	if len(v) > 12 {
		return v[:12]
	}
	return v
}

// Callee returns the wrapped plugin.
func (st *PluginStage) Callee() Callee { return st.p }

// Info implements pipeline.Stage.
func (st *PluginStage) Info() pipeline.StageInfo { return st.info }

// WithVariant returns a copy of the stage that reports variant in responses.
func (st *PluginStage) WithVariant(variant string) *PluginStage {
	c := &PluginStage{info: st.info, p: st.p, cat: st.cat, plan: st.plan, attrs: st.attrs, needs: st.needs, kind: st.kind}
	c.info.Variant = variant
	c.scrPool.New = func() any { return new(pluginScratch) }
	return c
}

// Run implements pipeline.Stage.
func (st *PluginStage) Run(env *pipeline.Env, l *pipeline.List) error {
	if l.Len() == 0 {
		return nil
	}
	sc := st.scrPool.Get().(*pluginScratch)
	defer st.scrPool.Put(sc)
	st.fill(env, l, sc)
	if err := st.p.Call(context.Background(), &sc.in, &sc.out); err != nil {
		return err
	}
	return st.apply(l, sc)
}

// fill builds the call's Input from the request and the list.
func (st *PluginStage) fill(env *pipeline.Env, l *pipeline.List, sc *pluginScratch) {
	in := &sc.in
	in.K = env.Request.K
	in.Context = in.Context[:0]
	hasUser, hasSession := false, false
	for _, cv := range env.Request.Context {
		in.Context = append(in.Context, plugin.KV{Key: cv.Key, Str: cv.Str, Num: cv.Num, IsNum: cv.IsNum})
		hasUser = hasUser || cv.Key == "user_id"
		hasSession = hasSession || cv.Key == "session_id"
	}
	if !hasUser && env.Request.UserID != "" {
		in.Context = append(in.Context, plugin.Str("user_id", env.Request.UserID))
	}
	if !hasSession && env.Request.SessionID != "" {
		in.Context = append(in.Context, plugin.Str("session_id", env.Request.SessionID))
	}
	in.IDs = l.IDs
	in.Scores = l.Scores
	in.Features = st.plan.Fill(env, l, &sc.s, in.Features)
	in.StringIDs = in.StringIDs[:0]
	if st.needs.IDs {
		for _, id := range l.IDs {
			in.StringIDs = append(in.StringIDs, st.cat.ItemName(id))
		}
	}
	in.ItemEmb = in.ItemEmb[:0]
	if st.needs.ItemEmbedding {
		in.ItemEmb = Embeddings(st.cat, l, in.ItemEmb)
	}
	in.QueryEmb = nil
	if st.needs.QueryEmbedding {
		in.QueryEmb = env.Query
	}
	in.Attrs = in.Attrs[:0]
	if len(st.attrs) > 0 {
		sc.ai = sc.ai[:0]
		for _, a := range st.attrs {
			ai, ok := st.cat.AttributeIndex(a)
			if !ok {
				ai = -1
			}
			sc.ai = append(sc.ai, ai)
		}
		in.Attrs = AttributeCodes(st.cat, sc.ai, l, in.Attrs)
	}
}

type ruleRow struct {
	idx   int32
	score float32
	pin   int32
}

// apply applies the plugin's outputs to l (sdk/ABI.md §4).
func (st *PluginStage) apply(l *pipeline.List, sc *pluginScratch) error {
	out := &sc.out
	switch st.kind {
	case pipeline.KindRank:
		copy(l.Scores, out.Scores)
		l.SortByScore()
	case pipeline.KindRules:
		ApplyRules(l, out.Scores, out.Keep, out.Pin, &sc.rows, &sc.order, &sc.tmp)
	case pipeline.KindDiversity:
		ApplyOrder(l, out.Order, &sc.order, &sc.listed, &sc.tmp)
	}
	return nil
}

// ApplyRules applies a rules stage's outputs to l: dropped candidates leave, the rest are
// ordered by score (descending; ties by input position), then each pinned candidate moves
// to its position (pins past the end go last; two pins on one position keep input order).
// rows and order are scratch, reused between calls.
func ApplyRules(l *pipeline.List, scores []float32, keep []bool, pin []int32, rows *[]ruleRow, order *[]int32, tmp *pipeline.List) {
	free := (*rows)[:0]
	for i := range l.IDs {
		if keep[i] && pin[i] < 0 {
			free = append(free, ruleRow{idx: int32(i), score: scores[i], pin: -1})
		}
	}
	nfree := len(free)
	for i := range l.IDs {
		if keep[i] && pin[i] >= 0 {
			free = append(free, ruleRow{idx: int32(i), score: scores[i], pin: pin[i]})
		}
	}
	*rows = free
	pinned := free[nfree:]
	free = free[:nfree]
	slices.SortStableFunc(free, func(a, b ruleRow) int {
		if a.score != b.score {
			if a.score > b.score {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.idx, b.idx)
	})
	slices.SortStableFunc(pinned, func(a, b ruleRow) int {
		if a.pin != b.pin {
			return cmp.Compare(a.pin, b.pin)
		}
		return cmp.Compare(a.idx, b.idx)
	})
	o := (*order)[:0]
	fi, pi, total := 0, 0, len(free)+len(pinned)
	for pos := int32(0); len(o) < total; pos++ {
		switch {
		case pi < len(pinned) && pinned[pi].pin <= pos:
			o = append(o, pinned[pi].idx)
			pi++
		case fi < len(free):
			o = append(o, free[fi].idx)
			fi++
		default:
			o = append(o, pinned[pi].idx)
			pi++
		}
	}
	*order = o
	copy(l.Scores, scores)
	l.Permute(o, tmp)
}

// ApplyOrder applies a diversity stage's order: the listed candidates first, in that order,
// then the unlisted ones in their input order. order and listed are scratch.
func ApplyOrder(l *pipeline.List, first []int32, order *[]int32, listed *[]bool, tmp *pipeline.List) {
	n := l.Len()
	o := append((*order)[:0], first...)
	mark := (*listed)[:0]
	for i := 0; i < n; i++ {
		mark = append(mark, false)
	}
	for _, i := range first {
		mark[i] = true
	}
	for i := 0; i < n; i++ {
		if !mark[i] {
			o = append(o, int32(i))
		}
	}
	*order, *listed = o, mark
	l.Permute(o, tmp)
}
