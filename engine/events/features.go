package events

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// Real-time features, by name, for plugins to request like any other feature:
//
//	item_<type>_<window>   decayed count of an item's events: item_views_1h, item_clicks_24h,
//	                       item_add_to_carts_1h, item_purchases_24h, item_impressions_1h, ...
//	item_ctr_<window>      smoothed click-through: (clicks + n·p) / (impressions + n)
//	item_score_<window>    popularity: counts weighted by StateConfig.PopularityWeights
//	user_<type>_<window>   the requesting user's (and session's) decayed counts
//
// An item or user without events reads 0 counts (and the prior p as CTR), never NaN.
type featKind uint8

const (
	featCount featKind = iota
	featCTR
	featScore
)

type featSpec struct {
	kind featKind
	t    Type // featCount
	win  int
}

type featureTable struct {
	names     []string
	specs     []featSpec
	index     map[string]int
	userNames []string
	userSpecs []featSpec
	userIndex map[string]int
}

func newFeatureTable(cfg *StateConfig) featureTable {
	ft := featureTable{index: map[string]int{}, userIndex: map[string]int{}}
	add := func(name string, sp featSpec) {
		ft.index[name] = len(ft.names)
		ft.names = append(ft.names, name)
		ft.specs = append(ft.specs, sp)
	}
	for t := TypeView; t <= TypeImpression; t++ {
		for wi, w := range cfg.Windows {
			add("item_"+typePlurals[t]+"_"+w.Name, featSpec{featCount, t, wi})
			name := "user_" + typePlurals[t] + "_" + w.Name
			ft.userIndex[name] = len(ft.userNames)
			ft.userNames = append(ft.userNames, name)
			ft.userSpecs = append(ft.userSpecs, featSpec{featCount, t, wi})
		}
	}
	for wi, w := range cfg.Windows {
		add("item_ctr_"+w.Name, featSpec{featCTR, 0, wi})
	}
	for wi, w := range cfg.Windows {
		add("item_score_"+w.Name, featSpec{featScore, 0, wi})
	}
	return ft
}

// FeatureNames returns the names of the real-time item features, in column order (a copy).
func (s *State) FeatureNames() []string { return append([]string(nil), s.feats.names...) }

// UserFeatureNames returns the names of the real-time user features, in column order.
func (s *State) UserFeatureNames() []string { return append([]string(nil), s.feats.userNames...) }

// FeatureColumn returns the column of a real-time item feature name for Gather.
func (s *State) FeatureColumn(name string) (int, bool) {
	c, ok := s.feats.index[name]
	return c, ok
}

// UserFeatureColumn returns the column of a real-time user feature name for GatherUser.
func (s *State) UserFeatureColumn(name string) (int, bool) {
	c, ok := s.feats.userIndex[name]
	return c, ok
}

// IsFeature reports whether name is a real-time item or user feature.
func (s *State) IsFeature(name string) bool {
	_, a := s.feats.index[name]
	_, b := s.feats.userIndex[name]
	return a || b
}

// Gather writes real-time item features cols of ids at now into a column-major matrix, as
// features.ItemStore.Gather does: dst[f*len(ids)+i] is feature cols[f] of item ids[i]. It
// reuses dst when its capacity suffices and then allocates nothing. It panics if a column is
// out of range. It is goroutine-safe and sees every event applied before it started.
func (s *State) Gather(ids []uint32, cols []int, now time.Time, dst []float32) []float32 {
	n := len(ids)
	need := n * len(cols)
	if cap(dst) < need {
		dst = make([]float32, need)
	}
	dst = dst[:need]
	// Per requested column, what to read and the factor that decays it to now, worked out
	// once (on the stack for up to 64 columns).
	type colPlan struct {
		kind featKind
		a, b int     // counter columns: the count, or clicks and impressions for CTR
		f    float64 // decay factor of the column's window
	}
	var planBuf [64]colPlan
	plans := planBuf[:0]
	if len(cols) > len(planBuf) {
		plans = make([]colPlan, 0, len(cols))
	}
	var r counterReader
	s.items.beginRead(now.UnixNano(), &r)
	defer s.items.endRead()
	c := s.items
	var sw [8][numCounted]float64 // per window: PopularityWeights by type, times the factor
	for _, col := range cols {
		if col < 0 || col >= len(s.feats.specs) {
			panic(fmt.Sprintf("events: Gather: feature column %d out of range [0,%d)", col, len(s.feats.specs)))
		}
		sp := s.feats.specs[col]
		p := colPlan{kind: sp.kind, a: sp.win, f: r.factors[sp.win]}
		switch sp.kind {
		case featCount:
			p.a = c.col(sp.t, sp.win)
		case featCTR:
			p.a, p.b = c.col(TypeClick, sp.win), c.col(TypeImpression, sp.win)
		case featScore:
			for t := TypeView; t <= TypeImpression; t++ {
				sw[sp.win][t-1] = float64(s.cfg.PopularityWeights.of(t)) * p.f
			}
		}
		plans = append(plans, p)
	}
	pr, m := s.cfg.CTRPrior, s.cfg.CTRPriorImpressions
	prior := float32(pr)
	nwin := c.nwin
	for lo := 0; lo < n; lo += gatherBatch {
		hi := min(lo+gatherBatch, n)
		// Touch each row first so that the cache misses of a batch overlap (as in
		// features.ItemStore.Gather).
		for _, id := range ids[lo:hi] {
			if row := r.row(id); row != nil {
				atomicLoad(&row[0])
			}
		}
		for i := lo; i < hi; i++ {
			row := r.row(ids[i])
			if row == nil {
				for f := range plans {
					v := float32(0)
					if plans[f].kind == featCTR {
						v = prior
					}
					dst[f*n+i] = v
				}
				continue
			}
			for f := range plans {
				p := &plans[f]
				var v float64
				switch p.kind {
				case featCount:
					v = rowGet(row, p.a) * p.f
				case featCTR:
					clicks, imps := rowGet(row, p.a)*p.f, rowGet(row, p.b)*p.f
					v = (clicks + m*pr) / (max(imps, clicks) + m)
				case featScore:
					w := &sw[p.a]
					for t := range numCounted {
						if w[t] != 0 {
							v += w[t] * rowGet(row, t*nwin+p.a)
						}
					}
				}
				dst[f*n+i] = float32(v)
			}
		}
	}
	return dst
}

// gatherBatch is how many items Gather touches ahead of reading; see Gather.
const gatherBatch = 64

func rowGet(row []uint32, col int) float64 {
	if row == nil {
		return 0
	}
	return float64(math.Float32frombits(atomicLoad(&row[col])))
}

// GatherUser writes real-time user features cols of this user and session at now into dst
// (one value per column, counts of the user's and the session's records summed) and
// returns it. It allocates nothing when dst has room. Goroutine-safe.
func (s *State) GatherUser(userID, sessionID string, cols []int, now time.Time, dst []float32) []float32 {
	dst = dst[:0]
	for range cols {
		dst = append(dst, 0)
	}
	sc := s.getScratch()
	nowNS := now.UnixNano()
	forScopes(userID, sessionID, func(scope byte, id string) {
		sc.key = appendKey(sc.key[:0], kindRecent, scope, id)
		sc.raw, _ = s.kv.Get(sc.raw[:0], sc.key)
		s.decodeRec(sc.raw, &sc.rec)
		if sc.rec.last == 0 {
			return
		}
		for f, c := range cols {
			sp := &s.feats.userSpecs[c]
			v := sc.rec.counts[int(sp.t-1)*s.items.nwin+sp.win]
			if age := nowNS - sc.rec.last; age > 0 {
				v *= math.Exp(-s.items.rates[sp.win] * float64(age))
			}
			dst[f] += float32(v)
		}
	})
	s.putScratch(sc)
	return dst
}

// ItemCount returns the decayed count of events of type t (view..impression) for item id in
// window wi at now. It is meant for tests and debugging; use Gather on the request path.
func (s *State) ItemCount(id uint32, t Type, wi int, now time.Time) float64 {
	if t < TypeView || t > TypeImpression || wi < 0 || wi >= s.items.nwin {
		return 0
	}
	var r counterReader
	s.items.beginRead(now.UnixNano(), &r)
	defer s.items.endRead()
	return r.get(id, s.items.col(t, wi))
}

// PopularityScore returns a score function for retrieval.Popularity.SetScore that blends
// the static popularity feature (StateConfig.StaticPopularity) with live popularity (event
// counts in PopularityWindow weighted by PopularityWeights), both scaled to [0, 1]:
//
//	score = (1−α)·static/max(static) + α·live/max(live),  α = M / (M + PopularityPrior)
//
// where M is the total weighted live event mass. With no events α is 0 and the order is the
// static one; as events accumulate, live counts take over. The function reads a snapshot
// taken at now (one pass over the catalog, O(items)); call PopularityScore again before each
// Refresh(true) so that trending shows. The returned function is goroutine-safe.
func (s *State) PopularityScore(now time.Time) func(id uint32) float32 {
	n := s.cat.ItemCap()
	live := make([]float32, n)
	static := make([]float32, n)
	col, hasStatic := s.cat.FeatureColumn(s.cfg.StaticPopularity)
	wi := 0
	for i, w := range s.cfg.Windows {
		if w.Name == s.cfg.PopularityWindow {
			wi = i
		}
	}
	var r counterReader
	s.items.beginRead(now.UnixNano(), &r)
	var maxLive, maxStatic, mass float64
	pw := &s.cfg.PopularityWeights
	for t := TypeView; t <= TypeImpression; t++ {
		mass += float64(pw.of(t)) * r.total(s.items.col(t, wi))
	}
	for id := range uint32(n) {
		var v float64
		if row := r.row(id); row != nil {
			for t := TypeView; t <= TypeImpression; t++ {
				if w := pw.of(t); w != 0 {
					v += float64(w) * rowGet(row, s.items.col(t, wi))
				}
			}
			v *= r.factors[wi]
		}
		live[id] = float32(v)
		maxLive = max(maxLive, v)
		if hasStatic {
			if x := float64(s.cat.ItemFeature(id, col)); x > 0 { // NaN and negatives count 0
				static[id] = float32(x)
				maxStatic = max(maxStatic, x)
			}
		}
	}
	s.items.endRead()
	alpha := mass / (mass + s.cfg.PopularityPrior)
	if maxLive == 0 {
		alpha = 0
	} else if maxStatic == 0 {
		alpha = 1
	}
	ws, wl := float32(0), float32(0)
	if maxStatic > 0 {
		ws = float32((1 - alpha) / maxStatic)
	}
	if maxLive > 0 {
		wl = float32(alpha / maxLive)
	}
	return func(id uint32) float32 {
		if int(id) >= len(live) {
			return 0
		}
		return ws*static[id] + wl*live[id]
	}
}

// gatherScratch holds GatherAll's buffers.
type gatherScratch struct {
	static, staticPos, rt, rtPos []int
	buf                          []float32
}

var gatherPool = sync.Pool{New: func() any { return new(gatherScratch) }}

// GatherAll gathers the named item features of ids at now into a column-major matrix, as
// features.ItemStore.Gather does (dst[f*len(ids)+i] is feature names[f] of ids[i]), taking
// each name from the real-time state when it is a real-time item feature (FeatureNames) and
// from the catalog's item features otherwise (NaN where the catalog has no such feature or
// value). It is the one call a plugin's feature matrix needs, whatever its manifest mixes.
// It reuses dst when its capacity suffices and then allocates nothing. Goroutine-safe.
func (s *State) GatherAll(ids []uint32, names []string, now time.Time, dst []float32) []float32 {
	n := len(ids)
	need := n * len(names)
	if cap(dst) < need {
		dst = make([]float32, need)
	}
	dst = dst[:need]
	sc := gatherPool.Get().(*gatherScratch)
	sc.static, sc.staticPos, sc.rt, sc.rtPos = sc.static[:0], sc.staticPos[:0], sc.rt[:0], sc.rtPos[:0]
	nan := float32(math.NaN())
	for f, name := range names {
		if c, ok := s.feats.index[name]; ok {
			sc.rt, sc.rtPos = append(sc.rt, c), append(sc.rtPos, f)
		} else if c, ok := s.cat.FeatureColumn(name); ok {
			sc.static, sc.staticPos = append(sc.static, c), append(sc.staticPos, f)
		} else {
			col := dst[f*n : (f+1)*n]
			for i := range col {
				col[i] = nan
			}
		}
	}
	if len(sc.static) > 0 {
		sc.buf = s.cat.GatherFeatures(ids, sc.static, sc.buf[:0])
		for k, f := range sc.staticPos {
			copy(dst[f*n:(f+1)*n], sc.buf[k*n:(k+1)*n])
		}
	}
	if len(sc.rt) > 0 {
		sc.buf = s.Gather(ids, sc.rt, now, sc.buf[:0])
		for k, f := range sc.rtPos {
			copy(dst[f*n:(f+1)*n], sc.buf[k*n:(k+1)*n])
		}
	}
	gatherPool.Put(sc)
	return dst
}
