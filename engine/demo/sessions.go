package demo

import (
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"
)

// SessionConfig shapes a synthetic interaction log over a Dataset.
type SessionConfig struct {
	Sessions int       // number of sessions
	MeanLen  float64   // mean interactions per session (geometric, at least 2)
	Start    time.Time // time of the first session; sessions spread over Span
	Span     time.Duration
	Seed     uint64
}

// DefaultSessionConfig is 5,000 sessions of about 6 interactions over one week.
func DefaultSessionConfig() SessionConfig {
	return SessionConfig{Sessions: 5000, MeanLen: 6, Start: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		Span: 7 * 24 * time.Hour, Seed: 7}
}

// Interaction is one event of a synthetic log, in the /v1/events shape.
type Interaction struct {
	Type      string
	UserID    string
	SessionID string
	ItemID    string
	TS        time.Time
}

// Sessions generates a synthetic interaction log over d, ordered by time. It stands in
// for a real log (which this repository does not have) to exercise the replay evaluation
// (engine eval), not to tune weights: its behaviour is made up, though shaped like what
// published session data sets show.
//   - A user's session starts at a popular, in-stock item of one of their interest
//     clusters.
//   - Each item has a few "next" items in its cluster (what people who look at it go on to
//     look at), so co-visitation carries signal across sessions.
//   - A step returns to one of the last three items 20% of the time, follows a "next"
//     item 45%, picks another item of the same cluster 20% and changes to another interest
//     cluster otherwise.
//   - Types: view 80%, click 15%, add_to_cart 5%.
//
// The output depends only on d and cfg.
func Sessions(d *Dataset, cfg SessionConfig) []Interaction {
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5e55))
	n := len(d.Items)
	// Items of each cluster, most popular first (popularity is feature 1).
	members := make([][]int32, d.Config.Clusters)
	for i := range n {
		if d.Items[i].InStock {
			c := d.ItemCluster[i]
			members[c] = append(members[c], int32(i))
		}
	}
	pop := func(i int32) float32 { return d.Items[i].Features[1].Value }
	for _, m := range members {
		slices.SortFunc(m, func(a, b int32) int {
			if pa, pb := pop(a), pop(b); pa != pb {
				if pa > pb {
					return -1
				}
				return 1
			}
			return int(a - b)
		})
	}
	// pick draws an item of cluster c with a Zipf-like preference for popular ones.
	pick := func(c int32) (int32, bool) {
		m := members[c]
		if len(m) == 0 {
			return 0, false
		}
		r := math.Pow(rng.Float64(), 2.5) // skews towards the head
		return m[int(r*float64(len(m)))], true
	}
	next := make(map[int32][]int32)
	nextOf := func(i int32) []int32 {
		if ns, ok := next[i]; ok {
			return ns
		}
		r := rand.New(rand.NewPCG(cfg.Seed, uint64(i)))
		m := members[d.ItemCluster[i]]
		var ns []int32
		for k := 0; k < 4 && len(m) > 1; k++ {
			j := m[int(math.Pow(r.Float64(), 1.5)*float64(len(m)))]
			if j != i && !slices.Contains(ns, j) {
				ns = append(ns, j)
			}
		}
		next[i] = ns
		return ns
	}
	var out []Interaction
	for s := range cfg.Sessions {
		u := rng.IntN(len(d.Users))
		cl := d.UserClusters[u]
		c := cl[0]
		if len(cl) > 1 && rng.Float64() < 0.4 {
			c = cl[rng.IntN(len(cl))]
		}
		cur, ok := pick(c)
		if !ok {
			continue
		}
		length := 2 + int(math.Floor(math.Log(rng.Float64())/math.Log(1-1/max(1, cfg.MeanLen-1))))
		length = min(length, 50)
		ts := cfg.Start.Add(time.Duration(rng.Float64() * float64(cfg.Span))).Truncate(time.Second)
		var hist []int32
		sid := "ds" + strconv.Itoa(s)
		uid := d.Users[u].ID
		for step := range length {
			if step > 0 {
				r := rng.Float64()
				switch {
				case r < 0.20 && len(hist) > 0:
					cur = hist[max(0, len(hist)-1-rng.IntN(3))]
				case r < 0.65:
					if ns := nextOf(cur); len(ns) > 0 {
						cur = ns[int(math.Pow(rng.Float64(), 1.5)*float64(len(ns)))]
						break
					}
					fallthrough
				case r < 0.85:
					if j, ok := pick(d.ItemCluster[cur]); ok {
						cur = j
					}
				default:
					c = cl[rng.IntN(len(cl))]
					if j, ok := pick(c); ok {
						cur = j
					}
				}
				ts = ts.Add(time.Duration(20+rng.IntN(100)) * time.Second)
			}
			typ := "view"
			if r := rng.Float64(); r > 0.95 {
				typ = "add_to_cart"
			} else if r > 0.80 {
				typ = "click"
			}
			hist = append(hist, cur)
			out = append(out, Interaction{Type: typ, UserID: uid, SessionID: sid, ItemID: d.Items[cur].ID, TS: ts})
		}
	}
	slices.SortStableFunc(out, func(a, b Interaction) int { return a.TS.Compare(b.TS) })
	return out
}

// WriteInteractionsNDJSON writes log as NDJSON in the /v1/events shape.
func WriteInteractionsNDJSON(w io.Writer, log []Interaction) error {
	var b []byte
	for _, e := range log {
		b = append(b[:0], `{"type":"`...)
		b = append(b, e.Type...)
		b = append(b, `","user_id":"`...)
		b = append(b, e.UserID...)
		b = append(b, `","session_id":"`...)
		b = append(b, e.SessionID...)
		b = append(b, `","item_id":"`...)
		b = append(b, e.ItemID...)
		b = append(b, `","ts":"`...)
		b = e.TS.UTC().AppendFormat(b, time.RFC3339)
		b = append(b, "\"}\n"...)
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}
