package retrieval

import (
	"math"

	"github.com/podium-rank/podium/engine/ann"
	"github.com/podium-rank/podium/engine/catalog"
	"github.com/podium-rank/podium/engine/features"
	"github.com/podium-rank/podium/engine/internal/marks"
	"github.com/podium-rank/podium/engine/pipeline"
)

// Config tunes retrieval. Zero values get the defaults.
type Config struct {
	// ANN is how many nearest neighbours of the query to fetch (default 500).
	ANN int
	// Popular is how many popular items to add to a personalised request's candidates
	// (default 50). A request with no query vector gets ANN popular items instead.
	Popular int
	// Affinity is how many popular items of the attribute values the request is into
	// (pipeline.Env.Affinity: the session's categories) join the candidates (default 50;
	// negative for none); AffinityScan bounds how far down the popularity order they are
	// looked for (default 10,000 items, about 20 µs).
	Affinity, AffinityScan int
	// UserWeight, ItemWeight and SessionWeight blend the unit-length user embedding, context
	// item embedding and session embedding into the query vector (defaults 1, 1, 1).
	UserWeight, ItemWeight, SessionWeight float32
}

func (c *Config) defaults() {
	if c.ANN <= 0 {
		c.ANN = 500
	}
	if c.Popular <= 0 {
		c.Popular = 50
	}
	if c.Affinity == 0 {
		c.Affinity = 50
	}
	if c.AffinityScan <= 0 {
		c.AffinityScan = 10_000
	}
	if c.UserWeight == 0 {
		c.UserWeight = 1
	}
	if c.ItemWeight == 0 {
		c.ItemWeight = 1
	}
	if c.SessionWeight == 0 {
		c.SessionWeight = 1
	}
}

// Retriever gathers a request's candidates. It is goroutine-safe; per-request buffers live
// in a Scratch that the caller keeps per goroutine.
type Retriever struct {
	cat *catalog.Catalog
	idx ann.Index
	pop *Popularity
	cfg Config
}

// New returns a retriever over cat, searching idx (nil for none) and falling back to pop.
func New(cat *catalog.Catalog, idx ann.Index, pop *Popularity, cfg Config) *Retriever {
	cfg.defaults()
	return &Retriever{cat: cat, idx: idx, pop: pop, cfg: cfg}
}

// Config returns the retriever's settings after defaults.
func (r *Retriever) Config() Config { return r.cfg }

// Scratch holds one request's retrieval buffers. It is not goroutine-safe.
type Scratch struct {
	res    []ann.Result
	vec    []float32
	seen   marks.Set
	filter availFilter
	aff    affinityFilter
}

// affinityFilter allows the available items whose attribute value the request is into.
type affinityFilter struct {
	avail *availFilter
	cat   *catalog.Catalog
	aff   *pipeline.Affinity
}

func (f *affinityFilter) Allow(id uint32) bool {
	return f.avail.Allow(id) && f.aff.Get(f.cat.AttributeCode(f.aff.Attr, id)) > 0
}

type availFilter struct {
	cat  *catalog.Catalog
	excl *marks.Set
}

func (f *availFilter) Allow(id uint32) bool { return f.cat.Available(id) && !f.excl.Has(id) }

// Signals are the inputs a query vector is built from, besides the user's own embedding.
type Signals struct {
	ContextItem    uint32 // dense id of context.item_id
	HasContextItem bool
	Session        []float32 // session embedding (time-decayed mean of recent items), or nil
}

// Query builds the query vector for a request into dst: the weighted sum of the
// unit-length user embedding (user, if not nil), context item embedding and session
// embedding. It returns dst[:0] when there is none. The source is SourceANN when a user or
// session vector took part, SourceItem when only the context item did.
func (r *Retriever) Query(user *features.UserRow, sig *Signals, s *Scratch, dst []float32) ([]float32, pipeline.Source) {
	dim := r.cat.Dim()
	dst = dst[:0]
	if dim == 0 {
		return dst, pipeline.SourceNone
	}
	src := pipeline.SourceNone
	add := func(v []float32, w float32) {
		n := norm(v)
		if n == 0 || w == 0 {
			return
		}
		if len(dst) == 0 {
			for range v {
				dst = append(dst, 0)
			}
		}
		w /= n
		for i, x := range v {
			dst[i] += w * x
		}
	}
	if user != nil && len(user.Emb) == dim {
		add(user.Emb, r.cfg.UserWeight)
		src = pipeline.SourceANN
	}
	if len(sig.Session) == dim {
		add(sig.Session, r.cfg.SessionWeight)
		src = pipeline.SourceANN
	}
	if sig.HasContextItem && r.cat.HasEmbedding(sig.ContextItem) {
		s.vec = r.cat.Embedding(sig.ContextItem, s.vec[:0])
		add(s.vec, r.cfg.ItemWeight)
		if src == pipeline.SourceNone {
			src = pipeline.SourceItem
		}
	}
	return dst, src
}

// Retrieve appends req's candidates to l: the co-visited items of cov (if any), the
// session's own recent items of recent (if any), the ANN neighbours of q (source src) and
// popular items, skipping unavailable and excluded items
// during the search. Candidates of a request with a query are scored by similarity to it;
// without one, co-visited items by their co-visitation score and the others by relative
// popularity.
func (r *Retriever) Retrieve(req *pipeline.Request, q []float32, src pipeline.Source, cov, recent *pipeline.SparseScores, aff *pipeline.Affinity, s *Scratch, l *pipeline.List) {
	hint := len(req.Exclude) + r.cfg.ANN + r.cfg.Popular + max(0, r.cfg.Affinity)
	if cov != nil {
		hint += len(cov.IDs())
	}
	if recent != nil {
		hint += len(recent.IDs())
	}
	s.seen.Reset(hint)
	for _, id := range req.Exclude {
		s.seen.Set(id)
	}
	s.filter = availFilter{cat: r.cat, excl: &s.seen}
	r.addSparse(cov, q, pipeline.SourceCoVisit, s, l)
	r.addSparse(recent, q, pipeline.SourceRecent, s, l)
	want := r.cfg.ANN
	if len(q) > 0 && r.idx != nil && r.idx.Len() > 0 {
		s.res = r.idx.Search(q, r.cfg.ANN, &s.filter, s.res[:0])
		for _, h := range s.res {
			s.seen.Set(h.ID)
			l.Add(h.ID, h.Score, src)
		}
		want = r.cfg.Popular
	} else {
		q = nil
	}
	if r.pop == nil {
		return
	}
	r.addPopular(&s.filter, 0, want, q, pipeline.SourcePopular, s, l)
	if aff != nil && aff.Active() && r.cfg.Affinity > 0 {
		s.aff = affinityFilter{avail: &s.filter, cat: r.cat, aff: aff}
		r.addPopular(&s.aff, r.cfg.AffinityScan, r.cfg.Affinity, q, pipeline.SourceAffinity, s, l)
	}
}

// addPopular appends up to want of the most popular items f allows that are not candidates
// yet, looking at the scan most popular (0: all), scored by similarity to q when there is
// one, else by relative popularity.
func (r *Retriever) addPopular(f ann.Filter, scan, want int, q []float32, src pipeline.Source, s *Scratch, l *pipeline.List) {
	if want <= 0 {
		return
	}
	added := 0
	r.pop.Top(f, scan, func(id uint32, pop float32) bool {
		if !s.seen.Set(id) {
			return true
		}
		score := pop
		if q != nil {
			s.vec = r.cat.Embedding(id, s.vec[:0])
			score = cosine(q, s.vec)
		}
		l.Add(id, score, src)
		added++
		return added < want
	})
}

// addSparse appends the available, not yet seen items of sc (nil: none) as candidates of
// source src, scored by similarity to q when there is one, else by their score in sc.
func (r *Retriever) addSparse(sc *pipeline.SparseScores, q []float32, src pipeline.Source, s *Scratch, l *pipeline.List) {
	if sc == nil {
		return
	}
	for _, id := range sc.IDs() {
		if !s.filter.Allow(id) {
			continue
		}
		score, _ := sc.Get(id)
		if len(q) > 0 && r.cat.HasEmbedding(id) {
			s.vec = r.cat.Embedding(id, s.vec[:0])
			score = cosine(q, s.vec)
		}
		s.seen.Set(id)
		l.Add(id, score, src)
	}
}

// Rerank appends the caller's candidates to l, scored by similarity to q when there is one
// (else 0), in the caller's order. Ids that are unknown were resolved away by the caller.
func (r *Retriever) Rerank(ids []uint32, q []float32, s *Scratch, l *pipeline.List) {
	for _, id := range ids {
		var score float32
		if len(q) > 0 && r.cat.HasEmbedding(id) {
			s.vec = r.cat.Embedding(id, s.vec[:0])
			score = cosine(q, s.vec)
		}
		l.Add(id, score, pipeline.SourceRequest)
	}
}

func norm(v []float32) float32 {
	var s float32
	for _, x := range v {
		s += x * x
	}
	return float32(math.Sqrt(float64(s)))
}

func cosine(a, b []float32) float32 {
	if len(a) != len(b) {
		return 0
	}
	var d, na, nb float32
	for i := range a {
		d += a[i] * b[i]
		na += a[i] * a[i]
		nb += b[i] * b[i]
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return d / float32(math.Sqrt(float64(na)*float64(nb)))
}
