//go:build !race

package events

import (
	"strconv"
	"testing"
	"time"
)

// TestReadPathAllocatesNothing proves the reads the rank path makes per request allocate
// nothing once their buffers have grown.
func TestReadPathAllocatesNothing(t *testing.T) {
	g, cat := memIngestor(t, 64, DefaultConfig())
	st := g.State()
	var lines []string
	for k := range 40 {
		lines = append(lines, ev([]string{"view", "click", "purchase"}[k%3], "u1", "", "i"+strconv.Itoa(k%64), time.Duration(k)*time.Second))
		lines = append(lines, ev("view", "", "s1", "i"+strconv.Itoa((k*5)%64), time.Duration(k)*time.Second))
	}
	ingest(t, g, time.Minute, lines...)
	now := t0.Add(time.Minute)
	ids := make([]uint32, 0, 64)
	for id := range uint32(cat.ItemCap()) {
		ids = append(ids, id)
	}
	cols := []int{0, 3, 10, 11, 12}
	ucols := []int{0, 1, 2}
	vec := make([]float32, 0, 4)
	ex := make([]uint32, 0, 64)
	feats := make([]float32, 0, len(ids)*len(cols))
	ufeats := make([]float32, 0, len(ucols))
	cv := make([]Scored, 0, 20)
	si := make([]Scored, 0, 20)
	seeds := []uint32{ids[3]}
	rid := []byte("req-1")
	names := []string{"popularity", "item_clicks_1h", "nope", "item_ctr_24h"}
	cases := map[string]func(){
		"SessionVector":          func() { vec = st.SessionVector("u1", "s1", now, vec) },
		"AppendExcluded":         func() { ex = st.AppendExcluded("u1", "s1", now, ex[:0]) },
		"Gather":                 func() { feats = st.Gather(ids, cols, now, feats) },
		"GatherUser":             func() { ufeats = st.GatherUser("u1", "s1", ucols, now, ufeats) },
		"SessionCoVisited":       func() { cv = st.SessionCoVisited("u1", "s1", nil, now, 20, cv[:0]) },
		"SessionCoVisitedSeeded": func() { cv = st.SessionCoVisited("u1", "s1", seeds, now, 20, cv[:0]) },
		"SessionItems":           func() { si = st.SessionItems("u1", "s1", now, 10, si[:0]) },
		"RecordServed":           func() { st.RecordServed(rid, "A", "u1", "", ids[:20], now) },
		"GatherAll":              func() { feats = st.GatherAll(ids, names, now, feats) },
	}
	for name, f := range cases {
		f() // grow buffers
		if n := testing.AllocsPerRun(200, f); n != 0 {
			t.Errorf("%s allocates %.1f times per call", name, n)
		}
	}
	truth(t, len(vec) == 4 && len(ex) > 0 && len(cv) > 0, "reads found nothing: %v %v %v", vec, ex, cv)
}
