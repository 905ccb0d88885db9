package events

import (
	"cmp"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"time"
)

// servedLog remembers recent responses (request id -> variant, shown items, user, time) in
// a fixed ring, so that impressions and clicks can be joined to the variant that produced
// them, and keeps per-variant counts over a sliding window of time buckets. Its memory is
// fixed at creation: Capacity slots of MaxIDs item ids, and a user index of Capacity×4
// slot numbers. One mutex guards it; every operation is a few hash lookups.
type servedLog struct {
	cfg  ServedConfig
	seed maphash.Seed

	mu       sync.Mutex
	slots    []servedSlot
	ids      []uint32 // Capacity × MaxIDs
	next     int
	byReq    map[uint64]int32
	byWho    []int32 // Capacity/4 buckets × 4 ways of slot+1 (0 = empty)
	variants map[string]int
	names    []string
	counts   [][]varBucket // per variant, ring of nb buckets
	bucketNS int64
	nb       int
}

type servedSlot struct {
	req     uint64 // request id hash; 0 = empty slot
	who     uint64 // user (or session) hash
	ts      int64
	variant int32
	n       int32
	clicked uint64 // positions < 64 already clicked (a click counts once)
}

type varBucket struct {
	start                                int64 // bucket number (time / bucketNS)
	requests, items, impressions, clicks uint64
}

// VariantStats is the click-through of one variant over the sliding window.
type VariantStats struct {
	Variant string `json:"variant"`
	// Requests and ItemsServed count responses recorded with RecordServed.
	Requests    uint64 `json:"requests"`
	ItemsServed uint64 `json:"items_served"`
	// Impressions counts items shown, from impression events joined by request_id.
	Impressions uint64 `json:"impressions"`
	// Clicks counts clicks joined by request_id, or by user (or session) and item within
	// ServedConfig.JoinWindow of the response.
	Clicks uint64 `json:"clicks"`
	// CTR is Clicks/Impressions (0 without impressions).
	CTR float64 `json:"ctr"`
	// ServedCTR is Clicks/ItemsServed, for clients that send no impressions.
	ServedCTR float64 `json:"served_ctr"`
}

const otherVariant = "other"

func newServedLog(cfg ServedConfig) *servedLog {
	l := &servedLog{cfg: cfg, seed: maphash.MakeSeed()}
	l.slots = make([]servedSlot, cfg.Capacity)
	l.ids = make([]uint32, cfg.Capacity*cfg.MaxIDs)
	l.byReq = make(map[uint64]int32, cfg.Capacity)
	l.byWho = make([]int32, max(4, cfg.Capacity/4*4))
	l.variants = map[string]int{}
	l.nb = 60
	l.bucketNS = max(int64(cfg.Window)/int64(l.nb), 1)
	return l
}

func (l *servedLog) hashReq(b []byte) uint64  { return maphash.Bytes(l.seed, b) | 1 }
func (l *servedLog) hashReqS(s string) uint64 { return maphash.String(l.seed, s) | 1 }

func (l *servedLog) hashWho(userID, sessionID string) uint64 {
	scope, id := scopeOf(userID, sessionID)
	if id == "" {
		return 0
	}
	h := maphash.String(l.seed, id)
	if scope == scopeSession {
		h ^= 0x9e3779b97f4a7c15
	}
	return h | 1
}

// variant returns the index of name, interning it (beyond MaxVariants, "other"). Call with
// l.mu held.
func (l *servedLog) variant(name string) int {
	if v, ok := l.variants[name]; ok {
		return v
	}
	if len(l.names) >= l.cfg.MaxVariants-1 && name != otherVariant {
		return l.variant(otherVariant)
	}
	v := len(l.names)
	name = strings.Clone(name)
	l.variants[name] = v
	l.names = append(l.names, name)
	l.counts = append(l.counts, make([]varBucket, l.nb))
	return v
}

func (l *servedLog) bucket(v int, now int64) *varBucket {
	k := now / l.bucketNS
	b := &l.counts[v][int(uint64(k)%uint64(l.nb))]
	if b.start != k {
		*b = varBucket{start: k}
	}
	return b
}

// RecordServed remembers that the response requestID, produced by variant (for example the
// experiment arm and plugin versions, "B:rank@v3"), showed ids to this user (or session) at
// now, so that later impressions and clicks join to it. Only the first ServedConfig.MaxIDs
// ids are kept. It is goroutine-safe and allocates nothing after the variant's first use.
func (s *State) RecordServed(requestID []byte, variant, userID, sessionID string, ids []uint32, now time.Time) {
	l := s.served
	req := l.hashReq(requestID)
	who := l.hashWho(userID, sessionID)
	nowNS := now.UnixNano()
	l.mu.Lock()
	defer l.mu.Unlock()
	si := l.next
	l.next = (l.next + 1) % len(l.slots)
	old := &l.slots[si]
	if old.req != 0 && l.byReq[old.req] == int32(si) {
		delete(l.byReq, old.req)
	}
	v := l.variant(variant)
	n := min(len(ids), l.cfg.MaxIDs)
	*old = servedSlot{req: req, who: who, ts: nowNS, variant: int32(v), n: int32(n)}
	copy(l.ids[si*l.cfg.MaxIDs:], ids[:n])
	l.byReq[req] = int32(si)
	if who != 0 {
		ways := l.byWho[int(who%uint64(len(l.byWho)/4))*4:][:4]
		copy(ways[1:], ways[:3]) // newest first
		ways[0] = int32(si) + 1
	}
	b := l.bucket(v, nowNS)
	b.requests++
	b.items += uint64(len(ids))
}

func (l *servedLog) impression(e *Event, n int, now int64) {
	if e.RequestID == "" {
		return
	}
	req := l.hashReqS(e.RequestID)
	l.mu.Lock()
	defer l.mu.Unlock()
	si, ok := l.byReq[req]
	if !ok {
		return
	}
	l.bucket(int(l.slots[si].variant), now).impressions += uint64(n)
}

func (l *servedLog) click(e *Event, item uint32, now int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	slot, pos := -1, -1
	if e.RequestID != "" {
		if si, ok := l.byReq[l.hashReqS(e.RequestID)]; ok {
			slot, pos = int(si), l.position(int(si), item)
		}
	} else if who := l.hashWho(e.UserID, e.SessionID); who != 0 {
		ways := l.byWho[int(who%uint64(len(l.byWho)/4))*4:][:4]
		for _, w := range ways {
			if w == 0 {
				continue
			}
			si := int(w - 1)
			sl := &l.slots[si]
			if sl.who != who || e.TS-sl.ts > int64(l.cfg.JoinWindow) || e.TS < sl.ts-int64(time.Minute) {
				continue
			}
			if p := l.position(si, item); p >= 0 {
				slot, pos = si, p
				break
			}
		}
	}
	if slot < 0 || pos < 0 {
		return
	}
	sl := &l.slots[slot]
	if pos < 64 {
		if sl.clicked&(1<<pos) != 0 {
			return
		}
		sl.clicked |= 1 << pos
	}
	l.bucket(int(sl.variant), now).clicks++
}

func (l *servedLog) position(si int, item uint32) int {
	n := int(l.slots[si].n)
	return slices.Index(l.ids[si*l.cfg.MaxIDs:si*l.cfg.MaxIDs+n], item)
}

// VariantCTR returns the click-through of every variant over the sliding window
// (ServedConfig.Window) ending at now, sorted by variant name. Goroutine-safe.
func (s *State) VariantCTR(now time.Time) []VariantStats {
	l := s.served
	k := now.UnixNano() / l.bucketNS
	l.mu.Lock()
	out := make([]VariantStats, 0, len(l.names))
	for v, name := range l.names {
		st := VariantStats{Variant: name}
		for _, b := range l.counts[v] {
			if b.start > k-int64(l.nb) && b.start <= k {
				st.Requests += b.requests
				st.ItemsServed += b.items
				st.Impressions += b.impressions
				st.Clicks += b.clicks
			}
		}
		if st.Impressions > 0 {
			st.CTR = float64(st.Clicks) / float64(st.Impressions)
		}
		if st.ItemsServed > 0 {
			st.ServedCTR = float64(st.Clicks) / float64(st.ItemsServed)
		}
		out = append(out, st)
	}
	l.mu.Unlock()
	slices.SortFunc(out, func(a, b VariantStats) int { return cmp.Compare(a.Variant, b.Variant) })
	return out
}
