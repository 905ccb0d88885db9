package events

import (
	"cmp"
	"encoding/binary"
	"math"
	"slices"
	"time"
)

// Per-user and per-session state lives in two features.KV (fastcache): millions of keys cost
// the GC nothing and memory is capped. fastcache is a ring per bucket: every write appends,
// and when the ring wraps the entries not rewritten since are evicted. So what a KV keeps
// is bounded by write volume, not by live keys: history records (rewritten on every
// interaction) live in StateConfig.SessionBytes, exclusion records (rewritten only on
// excluded types, purchases by default) in ExcludeBytes, so that a burst of views does not
// evict 30-day purchase exclusions. Sizing is in RATIONALE.md, "Why fastcache for
// per-user and per-session state, and how big?". An event with a user_id updates the user's entries; one with only a
// session_id updates the session's. Readers merge both, so a session that logs in midway
// keeps its anonymous history.
//
// Two records per user or session:
//
//	recent  'r' scope id: ver:u8 n:u8 last:i64 counts:f32×(numCounted·windows) entry×n
//	        entry = item:u32 type:u8 ts:u32 (Unix seconds), oldest first
//	exclude 'x' scope id: ver:u8 n:u16 (item:u32 expiry:u32)×n
//
// counts are the user's decayed counts per type and window as of last (Unix ns).
const (
	scopeUser    = 'u'
	scopeSession = 's'
	kindRecent   = 'r'
	kindExclude  = 'x'
	recVersion   = 1
	entrySize    = 9
	xentrySize   = 8
)

// Interaction is one entry of a user's or session's recent history.
type Interaction struct {
	Item uint32
	Type Type
	// TS is the interaction time in Unix nanoseconds, rounded down to the second.
	TS int64
}

type entry struct {
	item uint32
	typ  Type
	ts   uint32
}

type userRec struct {
	last   int64
	counts []float64
	ents   []entry
}

func appendKey(dst []byte, kind, scope byte, id string) []byte {
	dst = append(dst, kind, scope)
	return append(dst, id...)
}

func (s *State) recHeader() int { return 2 + 8 + 4*s.items.ncols }

// decodeRec parses raw into r; a missing or foreign record (other version or window count)
// reads as empty.
func (s *State) decodeRec(raw []byte, r *userRec) {
	r.last = 0
	r.counts = r.counts[:0]
	for range s.items.ncols {
		r.counts = append(r.counts, 0)
	}
	r.ents = r.ents[:0]
	h := s.recHeader()
	if len(raw) < h || raw[0] != recVersion || len(raw) != h+int(raw[1])*entrySize {
		return
	}
	r.last = int64(binary.LittleEndian.Uint64(raw[2:]))
	for i := range r.counts {
		r.counts[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[10+4*i:])))
	}
	for p := h; p < len(raw); p += entrySize {
		r.ents = append(r.ents, entry{binary.LittleEndian.Uint32(raw[p:]), Type(raw[p+4]), binary.LittleEndian.Uint32(raw[p+5:])})
	}
}

func (s *State) encodeRec(dst []byte, r *userRec) []byte {
	dst = append(dst, recVersion, byte(len(r.ents)))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(r.last))
	for _, c := range r.counts {
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(float32(c)))
	}
	for _, e := range r.ents {
		dst = binary.LittleEndian.AppendUint32(dst, e.item)
		dst = append(dst, byte(e.typ))
		dst = binary.LittleEndian.AppendUint32(dst, e.ts)
	}
	return dst
}

// count adds one event of type t at ts to a user's decayed counts.
func (s *State) count(r *userRec, t Type, ts int64) {
	if r.last == 0 {
		r.last = ts
	}
	if ts > r.last {
		for wi, rt := range s.items.rates {
			f := math.Exp(-rt * float64(ts-r.last))
			for ti := range numCounted {
				r.counts[ti*s.items.nwin+wi] *= f
			}
		}
		r.last = ts
	}
	for wi, rt := range s.items.rates {
		r.counts[int(t-1)*s.items.nwin+wi] += math.Exp(-rt * float64(r.last-ts))
	}
}

func unixSec(ns int64) uint32 {
	if ns <= 0 {
		return 0
	}
	return uint32(min(ns/int64(time.Second), math.MaxUint32))
}

func scopeOf(userID, sessionID string) (byte, string) {
	if userID != "" {
		return scopeUser, userID
	}
	return scopeSession, sessionID
}

// touchUser updates the recent record of e's user (or session): counts always, and for an
// interaction with item the history, returning in sc.prev the earlier items it co-visits.
// It reports whether the interaction duplicates one already in the history; then it
// changes nothing.
func (s *State) touchUser(e *Event, item uint32, interaction bool, sc *scratch) (dup bool) {
	sc.prev = sc.prev[:0]
	scope, id := scopeOf(e.UserID, e.SessionID)
	if id == "" {
		return false
	}
	sc.key = appendKey(sc.key[:0], kindRecent, scope, id)
	mu := s.lock(sc.key)
	mu.Lock()
	sc.raw, _ = s.kv.Get(sc.raw[:0], sc.key)
	r := &sc.rec
	s.decodeRec(sc.raw, r)
	if !interaction {
		s.count(r, e.Type, e.TS)
	} else {
		sec := unixSec(e.TS)
		// An interaction identical to one in the history (item, type, second) is a
		// duplicate: a client's retry, or an event replayed into state that a checkpoint
		// saved after applying it (see checkpoint.go). It changes no per-user state again;
		// its co-visits are computed as of its first arrival, because item-level state,
		// which is checkpointed exactly, still needs them.
		end := len(r.ents)
		at := slices.Index(r.ents, entry{item, e.Type, sec})
		if at >= 0 {
			end = at
		}
		gap := uint32(s.cfg.CoVisitGap / time.Second)
		for i := end - 1; i >= 0 && len(sc.prev) < s.cfg.CoVisitLookback; i-- {
			p := r.ents[i]
			d := max(p.ts, sec) - min(p.ts, sec)
			if p.item == item || d > gap || slices.Contains(sc.prev, p.item) {
				continue
			}
			sc.prev = append(sc.prev, p.item)
		}
		if at >= 0 {
			mu.Unlock()
			return true
		}
		s.count(r, e.Type, e.TS)
		if len(r.ents) >= s.cfg.RecentItems {
			r.ents = append(r.ents[:0], r.ents[len(r.ents)-s.cfg.RecentItems+1:]...)
		}
		r.ents = append(r.ents, entry{item, e.Type, sec})
	}
	sc.raw = s.encodeRec(sc.raw[:0], r)
	_ = s.kv.Set(sc.key, sc.raw) // at most 2+8+4·40+255·9 bytes: always fits
	mu.Unlock()
	return false
}

// exclude records that items are excluded for e's user (or session) until ts+win.
func (s *State) exclude(e *Event, items []uint32, win time.Duration, sc *scratch) {
	scope, id := scopeOf(e.UserID, e.SessionID)
	if id == "" || len(items) == 0 {
		return
	}
	now := unixSec(e.TS)
	expiry := unixSec(e.TS + int64(win))
	sc.key = appendKey(sc.key[:0], kindExclude, scope, id)
	mu := s.lock(sc.key)
	mu.Lock()
	defer mu.Unlock()
	sc.raw, _ = s.xkv.Get(sc.raw[:0], sc.key)
	xs := sc.xs[:0]
	if raw := sc.raw; len(raw) >= 3 && raw[0] == recVersion && len(raw) == 3+int(binary.LittleEndian.Uint16(raw[1:]))*xentrySize {
		for p := 3; p < len(raw); p += xentrySize {
			x := xentry{binary.LittleEndian.Uint32(raw[p:]), binary.LittleEndian.Uint32(raw[p+4:])}
			if x.expiry > now {
				xs = append(xs, x)
			}
		}
	}
	for _, it := range items {
		if i := slices.IndexFunc(xs, func(x xentry) bool { return x.item == it }); i >= 0 {
			xs[i].expiry = max(xs[i].expiry, expiry)
		} else {
			xs = append(xs, xentry{it, expiry})
		}
	}
	if len(xs) > s.cfg.MaxExcluded {
		slices.SortFunc(xs, func(a, b xentry) int { return cmp.Compare(b.expiry, a.expiry) })
		xs = xs[:s.cfg.MaxExcluded]
	}
	sc.xs = xs
	sc.raw = append(sc.raw[:0], recVersion, 0, 0)
	binary.LittleEndian.PutUint16(sc.raw[1:], uint16(len(xs)))
	for _, x := range xs {
		sc.raw = binary.LittleEndian.AppendUint32(sc.raw, x.item)
		sc.raw = binary.LittleEndian.AppendUint32(sc.raw, x.expiry)
	}
	_ = s.xkv.Set(sc.key, sc.raw) // at most 3+4000·8 bytes: always fits
}

type xentry struct {
	item   uint32
	expiry uint32
}

// scopes calls fn for the user's and the session's key, whichever are given.
func forScopes(userID, sessionID string, fn func(scope byte, id string)) {
	if userID != "" {
		fn(scopeUser, userID)
	}
	if sessionID != "" {
		fn(scopeSession, sessionID)
	}
}

// AppendExcluded appends to dst the dense ids of the items excluded for this user and
// session at now (by default, items purchased in the last 30 days; see
// StateConfig.Exclude) and returns it. Either id may be empty. It is goroutine-safe and
// allocates nothing when dst has room.
func (s *State) AppendExcluded(userID, sessionID string, now time.Time, dst []uint32) []uint32 {
	sc := s.getScratch()
	sec := unixSec(now.UnixNano())
	forScopes(userID, sessionID, func(scope byte, id string) {
		sc.key = appendKey(sc.key[:0], kindExclude, scope, id)
		raw, ok := s.xkv.Get(sc.raw[:0], sc.key)
		sc.raw = raw
		if !ok || len(raw) < 3 || raw[0] != recVersion || len(raw) != 3+int(binary.LittleEndian.Uint16(raw[1:]))*xentrySize {
			return
		}
		for p := 3; p < len(raw); p += xentrySize {
			if binary.LittleEndian.Uint32(raw[p+4:]) > sec {
				dst = append(dst, binary.LittleEndian.Uint32(raw[p:]))
			}
		}
	})
	s.putScratch(sc)
	return dst
}

// Recent appends the recent interactions of this user and session to dst, newest first,
// and returns it. Either id may be empty. It is goroutine-safe.
func (s *State) Recent(userID, sessionID string, dst []Interaction) []Interaction {
	sc := s.getScratch()
	start := len(dst)
	forScopes(userID, sessionID, func(scope byte, id string) {
		sc.key = appendKey(sc.key[:0], kindRecent, scope, id)
		sc.raw, _ = s.kv.Get(sc.raw[:0], sc.key)
		s.decodeRec(sc.raw, &sc.rec)
		for _, e := range sc.rec.ents {
			dst = append(dst, Interaction{Item: e.item, Type: e.typ, TS: int64(e.ts) * int64(time.Second)})
		}
	})
	s.putScratch(sc)
	slices.SortStableFunc(dst[start:], func(a, b Interaction) int { return cmp.Compare(b.TS, a.TS) })
	return dst
}

// SessionVector writes into dst (reusing its capacity) the session embedding of this user
// and session at now: the mean of the embeddings of their recent items, each weighted by
// its type (StateConfig.SessionWeights) and by 2^(−age/SessionHalfLife). It returns dst[:0]
// when there is none (no history, or the catalog has no embeddings), so the result can go
// straight into retrieval.Signals.Session. It is goroutine-safe and allocates nothing once
// dst and the internal buffers have grown.
func (s *State) SessionVector(userID, sessionID string, now time.Time, dst []float32) []float32 {
	dst = dst[:0]
	dim := s.cat.Dim()
	if dim == 0 {
		return dst
	}
	sc := s.getScratch()
	var wsum float64
	nowS := float64(now.UnixNano()) / 1e9
	k := -math.Ln2 / s.cfg.SessionHalfLife.Seconds()
	forScopes(userID, sessionID, func(scope byte, id string) {
		sc.key = appendKey(sc.key[:0], kindRecent, scope, id)
		sc.raw, _ = s.kv.Get(sc.raw[:0], sc.key)
		s.decodeRec(sc.raw, &sc.rec)
		for _, e := range sc.rec.ents {
			w := float64(s.cfg.SessionWeights.of(e.typ)) * math.Exp(k*max(0, nowS-float64(e.ts)))
			if w < 1e-9 || !s.cat.HasEmbedding(e.item) {
				continue
			}
			sc.emb = s.cat.Embedding(e.item, sc.emb[:0])
			if len(sc.emb) != dim {
				continue
			}
			if len(dst) == 0 {
				dst = append(dst, make([]float32, dim)...)
			}
			for i, x := range sc.emb {
				dst[i] += float32(w) * x
			}
			wsum += w
		}
	})
	s.putScratch(sc)
	if wsum == 0 {
		return dst[:0]
	}
	inv := float32(1 / wsum)
	for i := range dst {
		dst[i] *= inv
	}
	return dst
}

// SessionCoVisited appends to dst the top n items co-visited with this user's and
// session's recent items (up to 2·CoVisitLookback of them, weighted by recency with
// SessionHalfLife), best first, leaving out the recent items themselves. It is the
// candidate source of a "covisit" retriever (pipeline.SourceCoVisit). Seeds (the item a
// page shows, say) count as interactions of weight 1 made just now, ahead of the session's
// own, and are left out of the result too: an anonymous request with only a context item
// gets that item's co-visited neighbours this way. Goroutine-safe.
func (s *State) SessionCoVisited(userID, sessionID string, seeds []uint32, now time.Time, n int, dst []Scored) []Scored {
	sc := s.getScratch()
	sc.ids, sc.ws = sc.ids[:0], sc.ws[:0]
	for _, id := range seeds {
		if !slices.Contains(sc.ids, id) {
			sc.ids = append(sc.ids, id)
			sc.ws = append(sc.ws, 1)
		}
	}
	sc.inter = s.Recent(userID, sessionID, sc.inter[:0])
	// Recency is measured from now when there are seeds (they happen now), else from the
	// newest interaction, so that a user back after a day still gets the neighbours of what
	// they did last, in the same proportions.
	anchor := now.UnixNano()
	if len(seeds) == 0 && len(sc.inter) > 0 {
		anchor = min(anchor, sc.inter[0].TS)
	}
	for _, it := range sc.inter {
		if len(sc.ids) >= len(seeds)+2*s.cfg.CoVisitLookback {
			break
		}
		if slices.Contains(sc.ids, it.Item) {
			continue
		}
		w := s.recency(anchor, it.TS)
		if w < minSessionWeight {
			break // older interactions weigh less still
		}
		sc.ids = append(sc.ids, it.Item)
		sc.ws = append(sc.ws, w)
	}
	sc.scored, dst = s.cov.coVisited(sc.ids, sc.ws, n, sc.scored, dst)
	s.putScratch(sc)
	return dst
}

// minSessionWeight is the recency weight, relative to the newest interaction (or to now
// when the request brings a seed), below which an interaction no longer counts: about 13
// half-lives, 6.5 hours at the default 30 minutes. Without a relative anchor and the floor,
// a user's interactions from days ago weigh 2^-200 and less, which float32 holds as a
// denormal or 0, and normalising by such a weight gave +Inf scores.
const minSessionWeight = 1e-4

// recency is 2^(−age/SessionHalfLife) for an interaction at ts (ns) seen at now (ns).
func (s *State) recency(now, ts int64) float32 {
	age := max(0, float64(now-ts))
	return float32(math.Exp(-math.Ln2 * age / float64(s.cfg.SessionHalfLife)))
}

// SessionItems appends to dst up to n distinct items of this user's and session's recent
// interactions, best first, each scored by its strongest interaction: the type's weight
// (SessionWeights) times 2^(−age/SessionHalfLife), normalised so the best is 1. People
// come back to what they just looked at (a product viewed, then carted, then bought), so
// the engine offers these as candidates of their own (pipeline.SourceRecent); exclusion
// rules still apply to them. Goroutine-safe; allocates nothing once dst has grown.
func (s *State) SessionItems(userID, sessionID string, now time.Time, n int, dst []Scored) []Scored {
	if n <= 0 {
		return dst
	}
	sc := s.getScratch()
	sc.inter = s.Recent(userID, sessionID, sc.inter[:0])
	start := len(dst)
	anchor := now.UnixNano() // relative to the newest interaction, as in SessionCoVisited
	if len(sc.inter) > 0 {
		anchor = min(anchor, sc.inter[0].TS)
	}
	var top float32
	for _, it := range sc.inter {
		r := s.recency(anchor, it.TS)
		if r < minSessionWeight {
			break // most recent first: the rest are older
		}
		w := s.cfg.SessionWeights.of(it.Type) * r
		if w <= 0 {
			continue
		}
		found := false
		for k := start; k < len(dst); k++ {
			if dst[k].ID == it.Item {
				dst[k].Score = max(dst[k].Score, w)
				found = true
				break
			}
		}
		if !found {
			dst = append(dst, Scored{it.Item, w})
		}
		top = max(top, w)
	}
	s.putScratch(sc)
	out := dst[start:]
	slices.SortStableFunc(out, func(a, b Scored) int { return cmp.Compare(b.Score, a.Score) })
	if len(out) > n {
		dst = dst[:start+n]
		out = out[:n]
	}
	if top > 0 {
		for i := range out {
			out[i].Score /= top
		}
	}
	return dst
}

// CoVisited appends to dst the top n items co-visited with recent (most recent first;
// item i weighs 1/(1+i)), best first, leaving out recent itself. Goroutine-safe.
func (s *State) CoVisited(recent []uint32, n int, dst []Scored) []Scored {
	sc := s.getScratch()
	sc.ws = sc.ws[:0]
	for i := range recent {
		sc.ws = append(sc.ws, 1/float32(1+i))
	}
	sc.scored, dst = s.cov.coVisited(recent, sc.ws, n, sc.scored, dst)
	s.putScratch(sc)
	return dst
}
