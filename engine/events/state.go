package events

import (
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/podium-rank/podium/engine/catalog"
	"github.com/podium-rank/podium/engine/features"
)

// State is the real-time state events build: per-item decayed counters (trending, features,
// live popularity), per-user and per-session history and exclusions, co-visitation, and
// click-through per variant. Every method is goroutine-safe: many rank goroutines read
// while events apply. An Ingestor owns one State and applies events to it; the rank path
// reads it through Ingestor.State.
type State struct {
	cfg    StateConfig
	cat    *catalog.Catalog
	kv     *features.KV // history records
	xkv    *features.KV // exclusion records
	items  *itemCounters
	cov    *coVisit
	served *servedLog
	feats  featureTable

	seed  maphash.Seed
	locks [1024]sync.Mutex
	pool  sync.Pool

	lastApply  atomic.Int64 // wall time of the last apply, Unix ns
	newestTS   atomic.Int64 // newest event time applied, Unix ns
	applyStats [NumTypes]atomic.Uint64
	catalogErr atomic.Uint64 // item updates the catalog refused at apply time

	// overlay holds the latest event-made change of every item updated by events, so that
	// checkpoints carry them across restarts, when the catalog reloads its own files.
	overlayMu sync.Mutex
	overlay   map[uint32]*itemOverlay
	dups      atomic.Uint64 // duplicate interactions dropped
}

// scratch holds one call's buffers; States pool them.
type scratch struct {
	key    []byte
	raw    []byte
	rec    userRec
	prev   []uint32
	emb    []float32
	xs     []xentry
	ids    []uint32
	ws     []float32
	inter  []Interaction
	scored []Scored
}

// NewState returns an empty state over cat, which must outlive it. cfg's zero fields get
// the defaults. It returns an error for an invalid configuration.
func NewState(cat *catalog.Catalog, cfg StateConfig) (*State, error) {
	cfg.fill()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &State{cfg: cfg, cat: cat, kv: features.NewKV(cfg.SessionBytes), xkv: features.NewKV(cfg.ExcludeBytes),
		seed: maphash.MakeSeed()}
	s.items = newItemCounters(cfg.Windows)
	s.cov = newCoVisit(cfg.CoVisitNeighbours)
	s.served = newServedLog(cfg.Served)
	s.feats = newFeatureTable(&s.cfg)
	s.pool.New = func() any { return new(scratch) }
	s.overlay = map[uint32]*itemOverlay{}
	return s, nil
}

// Config returns the state's configuration after defaults.
func (s *State) Config() StateConfig { return s.cfg }

func (s *State) getScratch() *scratch   { return s.pool.Get().(*scratch) }
func (s *State) putScratch(sc *scratch) { s.pool.Put(sc) }

func (s *State) lock(key []byte) *sync.Mutex {
	return &s.locks[maphash.Bytes(s.seed, key)&uint64(len(s.locks)-1)]
}

// apply applies one validated event whose item (for interactions and item updates) is
// resolved; now is the wall-clock time of application. An interaction that duplicates one
// in the user's history is dropped, unless catchUp says it may be one a checkpoint's
// user state already holds while its item state does not (see checkpoint.go); then only
// its item-level effects apply.
func (s *State) apply(e *Event, now int64, catchUp bool) {
	sc := s.getScratch()
	switch {
	case e.Type.IsInteraction():
		item := e.item
		if s.touchUser(e, item, true, sc) && !catchUp {
			s.dups.Add(1)
			break
		}
		s.items.add(item, e.Type, 1, e.TS)
		for _, p := range sc.prev {
			s.cov.add(item, p, 1)
		}
		if win := s.cfg.Exclude.of(e.Type); win > 0 {
			sc.ids = append(sc.ids[:0], item)
			s.exclude(e, sc.ids, win, sc)
		}
		if e.Type == TypeClick {
			s.served.click(e, item, now)
		}
	case e.Type == TypeImpression:
		sc.ids = sc.ids[:0]
		items := s.cat.Items()
		for _, name := range e.ItemIDs {
			if id, ok := items.Lookup(name); ok {
				s.items.add(id, TypeImpression, 1, e.TS)
				sc.ids = append(sc.ids, id)
			}
		}
		s.touchUser(e, 0, false, sc)
		if win := s.cfg.Exclude.of(TypeImpression); win > 0 {
			s.exclude(e, sc.ids, win, sc)
		}
		s.served.impression(e, len(e.ItemIDs), now)
	case e.Type == TypeItemUpdate:
		s.applyItemUpdate(e)
	}
	s.putScratch(sc)
	s.applyStats[e.Type].Add(1)
	s.lastApply.Store(now)
	for {
		old := s.newestTS.Load()
		if e.TS <= old || s.newestTS.CompareAndSwap(old, e.TS) {
			break
		}
	}
}

// itemOverlay is what events changed about one item.
type itemOverlay struct {
	stock    int32
	hasStock bool
	price    float32
	hasPrice bool
	attrs    map[string]string
}

// applyItemUpdate changes the catalog: stock (0 or less makes the item unavailable, which
// the host enforces after the plugins), the "price" feature and attributes.
func (s *State) applyItemUpdate(e *Event) {
	id := e.item
	fail := false
	s.overlayMu.Lock()
	defer s.overlayMu.Unlock()
	o := s.overlay[id]
	if o == nil {
		o = &itemOverlay{}
		s.overlay[id] = o
	}
	if e.HasStock {
		if s.cat.SetStock(id, e.Stock) != nil {
			fail = true
		} else {
			o.stock, o.hasStock = e.Stock, true
		}
	}
	if e.HasPrice {
		if s.cat.SetItemFeature(id, "price", e.Price) != nil {
			fail = true
		} else {
			o.price, o.hasPrice = e.Price, true
		}
	}
	for _, a := range e.Attributes {
		// The catalog interns names and values, so they must not point into the body.
		name, value := strings.Clone(a.Name), strings.Clone(a.Value)
		if s.cat.SetAttribute(id, name, value) != nil {
			fail = true
			continue
		}
		if o.attrs == nil {
			o.attrs = map[string]string{}
		}
		o.attrs[name] = value
	}
	if fail {
		s.catalogErr.Add(1)
	}
}

// Staleness reports how fresh the state is at now: the time since the last event was
// applied, and the age of the newest event time applied (both 0 before any event).
func (s *State) Staleness(now time.Time) (sinceApply, newestAge time.Duration) {
	if t := s.lastApply.Load(); t != 0 {
		sinceApply = time.Duration(now.UnixNano() - t)
	}
	if t := s.newestTS.Load(); t != 0 {
		newestAge = time.Duration(now.UnixNano() - t)
	}
	return sinceApply, newestAge
}

// SessionStats returns the counters of the per-user and per-session history store.
func (s *State) SessionStats() features.KVStats { return s.kv.Stats() }

// ExclusionStats returns the counters of the per-user and per-session exclusion store.
func (s *State) ExclusionStats() features.KVStats { return s.xkv.Stats() }

// CoVisitSize returns how many items have a co-visitation list and how many neighbour
// entries those lists hold (12 bytes each).
func (s *State) CoVisitSize() (items, pairs int64) { return s.cov.items.Load(), s.cov.pairs.Load() }
