package events

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/podium-rank/podium/engine/catalog"
	"github.com/podium-rank/podium/engine/events/wal"
)

// benchCatalog is a catalog of n items with 32-d embeddings and 4 static features.
func benchCatalog(b *testing.B, n int) *catalog.Catalog {
	b.Helper()
	cat := catalog.New(catalog.Config{Dim: 32})
	emb := make([]float32, 32)
	for k := range n {
		for i := range emb {
			emb[i] = float32((k*31+i*17)%97) / 97
		}
		_, err := cat.Upsert(&catalog.Item{ID: "i" + strconv.Itoa(k), Embedding: emb, InStock: true,
			Features: []catalog.Feature{{Name: "popularity", Value: float32(k % 1000)}, {Name: "price", Value: 10},
				{Name: "rating", Value: 4}, {Name: "margin", Value: 0.2}}})
		if err != nil {
			b.Fatal(err)
		}
	}
	return cat
}

const benchItems = 100_000

// benchBody returns an NDJSON body of n interactions by user u over random items: the
// typical shape of a client's event batch.
func benchBody(seq, n int) []byte {
	var sb strings.Builder
	for k := range n {
		typ := [...]string{"view", "view", "view", "click", "click", "add_to_cart", "purchase", "view", "click", "view"}[k%10]
		fmt.Fprintf(&sb, `{"type":%q,"user_id":"u%d","session_id":"s%d","item_id":"i%d"}`+"\n",
			typ, seq%50_000, seq%50_000, (seq*7919+k*104729)%benchItems)
	}
	return []byte(sb.String())
}

// BenchmarkIngest measures Ingest end to end (decode, validate, WAL append, apply) for
// bodies of 10 events, per WAL fsync policy and without a WAL, from one goroutine and from
// 16 per core. events/s is the figure to compare; "nowal" is the baseline for the cost
// of the log.
func BenchmarkIngest(b *testing.B) {
	cat := benchCatalog(b, benchItems)
	bodies := make([][]byte, 4096)
	for i := range bodies {
		bodies[i] = benchBody(i, 10)
	}
	for _, pol := range []string{"nowal", "none", "interval", "always"} {
		for _, mode := range []string{"serial", "parallel16"} {
			b.Run(pol+"/"+mode, func(b *testing.B) {
				cfg := DefaultConfig()
				cfg.NoCheckpointOnClose = true
				dir := ""
				if pol != "nowal" {
					dir = b.TempDir()
					p, _ := wal.ParseSyncPolicy(pol)
					cfg.Sync = p
				}
				g, err := Open(dir, cfg, cat)
				if err != nil {
					b.Fatal(err)
				}
				defer g.Close()
				base := time.Now()
				var n atomic.Int64
				b.ReportAllocs()
				b.ResetTimer()
				run := func() {
					// Bodies repeat, so each pass gets receipt times a second apart: a
					// repeated body at the same second would be a duplicate, and dropped.
					i := n.Add(1)
					now := base.Add(time.Duration(i/int64(len(bodies))) * time.Second)
					res, err := g.Ingest(bodies[i%int64(len(bodies))], now)
					if err != nil || res.Accepted != 10 {
						b.Errorf("%v %+v", err, res)
					}
				}
				if mode == "serial" {
					for range b.N {
						run()
					}
				} else {
					b.SetParallelism(16)
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							run()
						}
					})
				}
				b.ReportMetric(float64(b.N)*10/b.Elapsed().Seconds(), "events/s")
				if d := g.Metrics(base).Duplicates; d > 0 {
					b.Fatalf("%d duplicates: the benchmark measured dropped events", d)
				}
			})
		}
	}
}

// BenchmarkApply measures the parts of one event's cost: decoding and validating it, and
// applying it to the state (counters, history, co-visitation, exclusions).
func BenchmarkApply(b *testing.B) {
	cat := benchCatalog(b, benchItems)
	g, err := Open("", DefaultConfig(), cat)
	if err != nil {
		b.Fatal(err)
	}
	st := g.State()
	now := time.Now()
	b.Run("decode/event", func(b *testing.B) {
		body := benchBody(1, 100)
		batch := new(Batch)
		b.SetBytes(int64(len(body)) / 100)
		b.ReportAllocs()
		for i := range b.N {
			if i%100 == 0 {
				batch.Reset()
				if err := Decode(body, now, DecodeOptions{}, batch); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	kinds := []struct {
		name string
		e    Event
	}{
		{"click", Event{Type: TypeClick, UserID: "u1", SessionID: "s1"}},
		{"view-anonymous", Event{Type: TypeView, SessionID: "s1"}},
		{"purchase", Event{Type: TypePurchase, UserID: "u1"}},
		{"impression20", Event{Type: TypeImpression, UserID: "u1", RequestID: "r1"}},
	}
	for _, k := range kinds {
		b.Run("apply/"+k.name, func(b *testing.B) {
			e := k.e
			if e.Type == TypeImpression {
				for i := range 20 {
					e.ItemIDs = append(e.ItemIDs, "i"+strconv.Itoa(i*977))
				}
			}
			users := make([]string, 10_000)
			for i := range users {
				users[i] = "u" + strconv.Itoa(i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				e.item = uint32(i*7919) % benchItems
				if e.UserID != "" {
					e.UserID = users[i%len(users)]
				} else {
					e.SessionID = users[i%len(users)]
				}
				e.TS = now.UnixNano() + int64(i)*int64(time.Millisecond)
				st.apply(&e, now.UnixNano(), false)
			}
		})
	}
}

// BenchmarkGather1000 gathers features of 1000 random items: the 14 real-time features,
// 4 of them, and (baseline) 4 static features from the catalog's ItemStore arena.
func BenchmarkGather1000(b *testing.B) {
	cat := benchCatalog(b, benchItems)
	g, err := Open("", DefaultConfig(), cat)
	if err != nil {
		b.Fatal(err)
	}
	st := g.State()
	now := time.Now()
	for i := range 200_000 { // events on every item
		e := Event{Type: Type(1 + i%5), UserID: "u" + strconv.Itoa(i%1000), TS: now.UnixNano(), item: uint32(i*7919) % benchItems}
		if e.Type == TypeImpression {
			e.ItemIDs = []string{"i" + strconv.Itoa(int(e.item))}
		}
		st.apply(&e, now.UnixNano(), false)
	}
	ids := make([]uint32, 1000)
	for i := range ids {
		ids[i] = uint32(i*104729) % benchItems
	}
	all := make([]int, len(st.FeatureNames()))
	for i := range all {
		all[i] = i
	}
	four := []int{2, 3, 10, 12} // clicks_1h, clicks_24h, ctr_1h, score_1h
	var static []int
	for _, n := range []string{"popularity", "price", "rating", "margin"} {
		c, _ := cat.FeatureColumn(n)
		static = append(static, c)
	}
	dst := make([]float32, 0, 1000*len(all))
	b.Run("realtime14", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			dst = st.Gather(ids, all, now, dst)
		}
	})
	b.Run("realtime4", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			dst = st.Gather(ids, four, now, dst)
		}
	})
	mixed := []string{"popularity", "price", "rating", "margin", "item_clicks_1h", "item_clicks_24h", "item_ctr_1h", "item_score_1h"}
	b.Run("GatherAll-4static+4realtime", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			dst = st.GatherAll(ids, mixed, now, dst)
		}
	})
	b.Run("static4-baseline", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			dst = cat.GatherFeatures(ids, static, dst)
		}
	})
}

// BenchmarkReads measures the other per-request reads of the rank path for a user with a
// full history (50 items) and a few exclusions.
func BenchmarkReads(b *testing.B) {
	cat := benchCatalog(b, benchItems)
	g, err := Open("", DefaultConfig(), cat)
	if err != nil {
		b.Fatal(err)
	}
	st := g.State()
	now := time.Now()
	for i := range 100_000 {
		e := Event{Type: Type(1 + i%4), UserID: "u" + strconv.Itoa(i%1000), TS: now.UnixNano() - int64(100_000-i)*int64(time.Second/100),
			item: uint32(i*7919) % benchItems}
		st.apply(&e, now.UnixNano(), false)
	}
	var vec []float32
	var ex []uint32
	var cv []Scored
	users := make([]string, 1000)
	for i := range users {
		users[i] = "u" + strconv.Itoa(i)
	}
	b.Run("SessionVector", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			vec = st.SessionVector(users[i%1000], "", now, vec)
		}
	})
	b.Run("AppendExcluded", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			ex = st.AppendExcluded(users[i%1000], "", now, ex[:0])
		}
	})
	b.Run("SessionCoVisited100", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			cv = st.SessionCoVisited(users[i%1000], "", nil, now, 100, cv[:0])
		}
	})
	ids := make([]uint32, 20)
	rid := []byte("0123456789abcdef-1")
	b.Run("RecordServed", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			rid[len(rid)-1] = byte(i)
			st.RecordServed(rid, "A", "u1", "", ids, now)
		}
	})
}

// BenchmarkCheckpoint writes checkpoints of a state with 100k users (10 interactions each)
// over 100k items. pause-ms is how long ingestion waited (state copied and KV saved);
// ns/op is the whole checkpoint including fsyncs and renames. It also reports the memory
// the per-user state takes in fastcache.
func BenchmarkCheckpoint(b *testing.B) {
	cat := benchCatalog(b, benchItems)
	cfg := DefaultConfig()
	cfg.NoCheckpointOnClose = true
	g, err := Open(b.TempDir(), cfg, cat)
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	st := g.State()
	now := time.Now()
	const users = 100_000
	for i := range users * 10 {
		e := Event{Type: Type(1 + i%4), UserID: "u" + strconv.Itoa(i%users), TS: now.UnixNano() + int64(i/users)*int64(time.Second),
			item: uint32(i*7919) % benchItems}
		st.apply(&e, now.UnixNano(), false)
	}
	kv := st.SessionStats()
	live := 0
	for i := range users {
		if len(st.Recent("u"+strconv.Itoa(i), "", nil)) == 10 {
			live++
		}
	}
	b.ResetTimer()
	var pause time.Duration
	for range b.N {
		if err := g.Checkpoint(); err != nil {
			b.Fatal(err)
		}
		pause += g.Metrics(now).CheckpointPause
	}
	b.ReportMetric(float64(pause.Microseconds())/1e3/float64(b.N), "pause-ms")
	b.ReportMetric(float64(kv.Entries), "kv-entries")
	b.ReportMetric(float64(live), "users-with-full-history")
}
