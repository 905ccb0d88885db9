// Package stages turns plugins into pipeline stages: it materialises what a plugin's
// manifest asks for (feature columns, embeddings, attribute codes, ids) from the catalog,
// the request and real-time state, calls the plugin, and applies its outputs.
package stages

import (
	"math"
	"strings"

	"github.com/podium-rank/podium/engine/catalog"
	"github.com/podium-rank/podium/engine/pipeline"
)

// Built-in feature names the host computes per request. Plugins ask for them by name like
// any catalog feature.
const (
	FeatureRetrievalScore = "retrieval_score"  // similarity to the query, or relative popularity
	FeatureRetriever      = "retriever"        // which retriever found the candidate (pipeline.Source)
	FeatureScore          = "score"            // the score from the previous stage
	FeaturePosition       = "position"         // 0-based position in the incoming list
	FeatureCoVisit        = "covisit_score"    // co-visitation with the session's recent items, 0..1
	FeaturePopularity     = "popularity_score" // popularity (static blended with live events) relative to the top item, 0..1
	FeatureSession        = "session_score"    // how strongly and recently the session interacted with the item itself, 0..1
	FeatureAffinity       = "affinity_score"   // the session's interest in the item's category (engine.Config.AffinityAttribute), 0..1
	UserFeaturePrefix     = "user."            // user.<name>: the requesting user's feature, same for every candidate
	ContextFeaturePrefix  = "ctx."             // ctx.<key>: a numeric request context value
)

// Realtime serves request-time features computed from events (counts, CTR, trending) by
// name. The events package implements it; nil means none.
type Realtime interface {
	// Column returns the column of a real-time feature name.
	Column(name string) (int, bool)
	// Gather writes columns cols of items ids, as of now (Unix microseconds), column-major
	// into dst and returns it; NaN where unknown.
	Gather(ids []uint32, cols []int, now int64, dst []float32) []float32
}

type sourceKind uint8

const (
	srcMissing sourceKind = iota
	srcItem
	srcRealtime
	srcRetrieval
	srcRetriever
	srcScore
	srcPosition
	srcUser
	srcContext
	srcCoVisit
	srcPopularity
	srcSession
	srcAffinity
)

type column struct {
	kind sourceKind
	col  int    // item, realtime or user column
	key  string // context key, or the name still to resolve
}

// FeaturePlan maps a plugin's feature names to where their values come from. Names the
// catalog does not know yet are resolved again on each call, so a feature that arrives
// after the plugin was loaded is picked up; until then it reads as NaN.
// A FeaturePlan is immutable after NewFeaturePlan and goroutine-safe.
type FeaturePlan struct {
	names []string
	cols  []column
	cat   *catalog.Catalog
	rt    Realtime
	pop   func(id uint32) float32
}

// Sources are where a FeaturePlan reads from.
type Sources struct {
	Catalog *catalog.Catalog
	// Realtime serves event-based features; nil for none.
	Realtime Realtime
	// Popularity returns an item's relative popularity (0..1); nil reads 0.
	Popularity func(id uint32) float32
}

// NewFeaturePlan resolves names against src.
func NewFeaturePlan(names []string, src Sources) *FeaturePlan {
	p := &FeaturePlan{names: append([]string(nil), names...), cols: make([]column, len(names)),
		cat: src.Catalog, rt: src.Realtime, pop: src.Popularity}
	for i, n := range names {
		p.cols[i] = p.resolve(n)
	}
	return p
}

// Names returns the feature names in column order.
func (p *FeaturePlan) Names() []string { return p.names }

func (p *FeaturePlan) resolve(name string) column {
	switch name {
	case FeatureRetrievalScore:
		return column{kind: srcRetrieval}
	case FeatureRetriever:
		return column{kind: srcRetriever}
	case FeatureScore:
		return column{kind: srcScore}
	case FeaturePosition:
		return column{kind: srcPosition}
	case FeatureCoVisit:
		return column{kind: srcCoVisit}
	case FeaturePopularity:
		return column{kind: srcPopularity}
	case FeatureSession:
		return column{kind: srcSession}
	case FeatureAffinity:
		return column{kind: srcAffinity}
	}
	if rest, ok := strings.CutPrefix(name, UserFeaturePrefix); ok {
		if c, ok := p.cat.UserSchema().Lookup(rest); ok {
			return column{kind: srcUser, col: c}
		}
		return column{kind: srcMissing, key: name}
	}
	if rest, ok := strings.CutPrefix(name, ContextFeaturePrefix); ok {
		return column{kind: srcContext, key: rest}
	}
	if p.rt != nil {
		if c, ok := p.rt.Column(name); ok {
			return column{kind: srcRealtime, col: c}
		}
	}
	if c, ok := p.cat.FeatureColumn(name); ok {
		return column{kind: srcItem, col: c}
	}
	return column{kind: srcMissing, key: name}
}

// Scratch holds one call's buffers. It is not goroutine-safe.
type Scratch struct {
	itemCols []int
	itemAt   []int
	rtCols   []int
	rtAt     []int
	tmp      []float32
}

// Fill writes the plan's columns for the candidates of l into dst, column-major
// (dst[f*n+i]), and returns it. It allocates only when dst or the scratch must grow.
func (p *FeaturePlan) Fill(env *pipeline.Env, l *pipeline.List, s *Scratch, dst []float32) []float32 {
	n := l.Len()
	need := n * len(p.cols)
	if cap(dst) < need {
		dst = make([]float32, need)
	}
	dst = dst[:need]
	nan := float32(math.NaN())
	s.itemCols, s.itemAt, s.rtCols, s.rtAt = s.itemCols[:0], s.itemAt[:0], s.rtCols[:0], s.rtAt[:0]
	for f, c := range p.cols {
		if c.kind == srcMissing {
			c = p.resolve(c.key) // it may have arrived since
		}
		out := dst[f*n : (f+1)*n]
		switch c.kind {
		case srcItem:
			s.itemCols, s.itemAt = append(s.itemCols, c.col), append(s.itemAt, f)
		case srcRealtime:
			s.rtCols, s.rtAt = append(s.rtCols, c.col), append(s.rtAt, f)
		case srcRetrieval:
			copy(out, l.Retrieval)
		case srcRetriever:
			for i, src := range l.Sources {
				out[i] = float32(src)
			}
		case srcScore:
			copy(out, l.Scores)
		case srcPosition:
			for i := range out {
				out[i] = float32(i)
			}
		case srcCoVisit:
			for i, id := range l.IDs {
				out[i], _ = env.CoVisit.Get(id)
			}
		case srcSession:
			for i, id := range l.IDs {
				out[i], _ = env.Recent.Get(id)
			}
		case srcAffinity:
			a := &env.Affinity
			for i, id := range l.IDs {
				out[i] = 0
				if a.Active() {
					out[i] = a.Get(p.cat.AttributeCode(a.Attr, id))
				}
			}
		case srcPopularity:
			for i, id := range l.IDs {
				out[i] = 0
				if p.pop != nil {
					out[i] = p.pop(id)
				}
			}
		case srcUser:
			v := nan
			if env.HasUser {
				if x, ok := env.User.Value(c.col); ok {
					v = x
				}
			}
			fill(out, v)
		case srcContext:
			v := nan
			for _, cv := range env.Request.Context {
				if cv.Key == c.key && cv.IsNum {
					v = float32(cv.Num)
				}
			}
			fill(out, v)
		default:
			fill(out, nan)
		}
	}
	if len(s.itemCols) > 0 {
		s.tmp = p.cat.GatherFeatures(l.IDs, s.itemCols, s.tmp[:0])
		for j, f := range s.itemAt {
			copy(dst[f*n:(f+1)*n], s.tmp[j*n:(j+1)*n])
		}
	}
	if len(s.rtCols) > 0 {
		s.tmp = p.rt.Gather(l.IDs, s.rtCols, env.Now, s.tmp[:0])
		for j, f := range s.rtAt {
			copy(dst[f*n:(f+1)*n], s.tmp[j*n:(j+1)*n])
		}
	}
	return dst
}

func fill(dst []float32, v float32) {
	for i := range dst {
		dst[i] = v
	}
}

// Embeddings appends the candidates' item embeddings, row-major, to dst[:0].
func Embeddings(cat *catalog.Catalog, l *pipeline.List, dst []float32) []float32 {
	dst = dst[:0]
	for _, id := range l.IDs {
		dst = cat.Embedding(id, dst)
	}
	return dst
}

// AttributeCodes writes the candidates' codes for the attributes attrs (catalog attribute
// indexes, -1 for an attribute the catalog lacks) column-major into dst: the value's id in
// the catalog's value interner, or -1 when missing.
func AttributeCodes(cat *catalog.Catalog, attrs []int, l *pipeline.List, dst []int32) []int32 {
	dst = dst[:0]
	for _, ai := range attrs {
		for _, id := range l.IDs {
			code := int32(-1)
			if ai >= 0 {
				code = int32(cat.AttributeCode(ai, id)) - 1
			}
			dst = append(dst, code)
		}
	}
	return dst
}
