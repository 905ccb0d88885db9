package events

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/podium-rank/podium/engine/catalog"
	"github.com/podium-rank/podium/engine/events/wal"
)

// snapshotOf captures what recovery must restore, as plain values.
type stateSnap struct {
	clicks, views []float64
	vector        []float32
	excluded      []uint32
	covisit       []Scored
	userClicks    []float32
}

func snapshotOf(t *testing.T, g *Ingestor, cat *catalog.Catalog, now time.Time) stateSnap {
	t.Helper()
	st := g.State()
	var s stateSnap
	for id := range uint32(cat.ItemCap()) {
		s.clicks = append(s.clicks, st.ItemCount(id, TypeClick, 0, now))
		s.views = append(s.views, st.ItemCount(id, TypeView, 1, now))
	}
	s.vector = st.SessionVector("u1", "s1", now, nil)
	s.excluded = st.AppendExcluded("u1", "s1", now, nil)
	slices.Sort(s.excluded)
	s.covisit = st.CoVisited([]uint32{dense(t, cat, "i1")}, 10, nil)
	col, _ := st.UserFeatureColumn("user_clicks_24h")
	s.userClicks = st.GatherUser("u1", "s1", []int{col}, now, nil)
	return s
}

func sameSnap(t *testing.T, got, want stateSnap) {
	t.Helper()
	for i := range want.clicks {
		near(t, got.clicks[i], want.clicks[i], 1e-4, "clicks of item %d", i)
		near(t, got.views[i], want.views[i], 1e-4, "views of item %d", i)
	}
	eq(t, got.vector, want.vector, "session vector")
	eq(t, got.excluded, want.excluded, "excluded")
	eq(t, got.covisit, want.covisit, "covisit")
	eq(t, got.userClicks, want.userClicks, "user clicks")
}

func someEvents(round int) []string {
	var lines []string
	for k := range 20 {
		item := fmt.Sprintf("i%d", (k*7+round)%16)
		at := time.Duration(round*20+k) * time.Second
		switch k % 4 {
		case 0:
			lines = append(lines, ev("click", "u1", "", item, at))
		case 1:
			lines = append(lines, ev("view", "", "s1", item, at))
		case 2:
			lines = append(lines, ev("purchase", "u1", "s1", item, at))
		default:
			lines = append(lines, ev("view", fmt.Sprintf("u%d", k), "", item, at))
		}
	}
	return lines
}

func TestRecoveryFromWALOnly(t *testing.T) {
	dir := t.TempDir()
	cat := testCatalog(t, 16)
	cfg := DefaultConfig()
	cfg.NoCheckpointOnClose = true
	g, err := Open(dir, cfg, cat)
	ok(t, err)
	for r := range 5 {
		ingest(t, g, 10*time.Minute, someEvents(r)...)
	}
	now := t0.Add(10 * time.Minute)
	want := snapshotOf(t, g, cat, now)
	ok(t, g.Close())

	g, err = Open(dir, cfg, cat)
	ok(t, err)
	defer g.Close()
	rec := g.Metrics(now).Recovery
	truth(t, !rec.Checkpoint && rec.Records == 5 && rec.Events == 100, "recovery %+v", rec)
	sameSnap(t, snapshotOf(t, g, cat, now), want)
}

func TestCheckpointThenWAL(t *testing.T) {
	dir := t.TempDir()
	cat := testCatalog(t, 16)
	cfg := DefaultConfig()
	cfg.NoCheckpointOnClose = true
	cfg.SegmentBytes = 1024 // several segments, so truncation shows
	g, err := Open(dir, cfg, cat)
	ok(t, err)
	for r := range 6 {
		ingest(t, g, 10*time.Minute, someEvents(r)...)
	}
	_, err = g.IngestFrom("kafka/events/0", 42, []byte(ev("click", "u1", "", "i1", 0)), t0.Add(10*time.Minute))
	ok(t, err)
	segsBefore := g.Metrics(t0).WAL.Segments
	ok(t, g.Checkpoint())
	m := g.Metrics(t0)
	truth(t, m.WAL.Segments < segsBefore, "checkpoint left %d of %d WAL segments", m.WAL.Segments, segsBefore)
	eq(t, m.Checkpoints, uint64(1), "checkpoints")
	for r := 6; r < 8; r++ {
		ingest(t, g, 10*time.Minute, someEvents(r)...)
	}
	now := t0.Add(10 * time.Minute)
	want := snapshotOf(t, g, cat, now)
	ok(t, g.Close())

	g, err = Open(dir, cfg, cat)
	ok(t, err)
	rec := g.Metrics(now).Recovery
	truth(t, rec.Checkpoint && rec.CheckpointSeq == 6 && rec.Records == 2 && rec.Events == 40 && len(rec.Warnings) == 0,
		"recovery %+v", rec)
	eq(t, g.Positions(), map[string]int64{"kafka/events/0": 42}, "positions")
	sameSnap(t, snapshotOf(t, g, cat, now), want)

	// A checkpoint on Close, then a reopen that replays nothing.
	g.cfg.NoCheckpointOnClose = false
	ok(t, g.Close())
	g, err = Open(dir, cfg, cat)
	ok(t, err)
	defer g.Close()
	rec = g.Metrics(now).Recovery
	truth(t, rec.Checkpoint && rec.CheckpointSeq == 8 && rec.Records == 0, "recovery after a clean close %+v", rec)
	sameSnap(t, snapshotOf(t, g, cat, now), want)
	res := ingest(t, g, 10*time.Minute, ev("view", "u1", "", "i2", 0))
	eq(t, res.WALSeq, uint64(9), "next WAL seq")
}

func TestRecoveryRemapsChangedItemIDs(t *testing.T) {
	dir := t.TempDir()
	cat := testCatalog(t, 8)
	g, err := Open(dir, DefaultConfig(), cat)
	ok(t, err)
	ingest(t, g, 0, ev("click", "u1", "", "i5", 0), ev("view", "u1", "", "i6", 0), ev("purchase", "u1", "", "i6", 0))
	ok(t, g.Close()) // checkpoints

	// A new process loads the catalog in another order: dense ids differ.
	cat2 := catalog.New(catalog.Config{Dim: 4})
	for k := 7; k >= 0; k-- {
		_, err := cat2.Upsert(&catalog.Item{ID: fmt.Sprintf("i%d", k), Embedding: []float32{1, 0, 0, 0}, InStock: true})
		ok(t, err)
	}
	g, err = Open(dir, DefaultConfig(), cat2)
	ok(t, err)
	defer g.Close()
	rec := g.Metrics(t0).Recovery
	eq(t, len(rec.Warnings), 1, "warnings %v", rec.Warnings)
	near(t, g.State().ItemCount(dense(t, cat2, "i5"), TypeClick, 0, t0), 1, 1e-6, "i5 clicks after remap")
	near(t, g.State().ItemCount(dense(t, cat2, "i6"), TypeView, 0, t0), 1, 1e-6, "i6 views after remap")
	got := g.State().CoVisited([]uint32{dense(t, cat2, "i5")}, 5, nil)
	eq(t, len(got), 1, "covisit after remap")
	eq(t, got[0].ID, dense(t, cat2, "i6"), "covisit neighbour after remap")
	eq(t, len(g.State().AppendExcluded("u1", "", t0, nil)), 0, "session state is dropped on remap")
}

func TestCorruptCheckpointFallsBackToEmptyState(t *testing.T) {
	dir := t.TempDir()
	cat := testCatalog(t, 8)
	g, err := Open(dir, DefaultConfig(), cat)
	ok(t, err)
	ingest(t, g, 0, ev("click", "u1", "", "i5", 0))
	ok(t, g.Close())
	p := filepath.Join(dir, checkpointName, stateName)
	b, err := os.ReadFile(p)
	ok(t, err)
	b[len(b)/2] ^= 0xff
	ok(t, os.WriteFile(p, b, 0o644))
	g, err = Open(dir, DefaultConfig(), cat)
	ok(t, err)
	defer g.Close()
	rec := g.Metrics(t0).Recovery
	truth(t, len(rec.Warnings) == 1 && strings.Contains(rec.Warnings[0], "checksum"), "warnings %v", rec.Warnings)
	near(t, g.State().ItemCount(dense(t, cat, "i5"), TypeClick, 0, t0), 0, 0, "counts from a corrupt checkpoint")
}

func TestIngestAfterClose(t *testing.T) {
	g, _ := memIngestor(t, 4, DefaultConfig())
	ok(t, g.Close())
	_, err := g.Ingest([]byte(ev("view", "u", "", "i1", 0)), t0)
	isErr(t, err, ErrClosed)
	isErr(t, g.Checkpoint(), ErrClosed)
}

const crashEnv = "PODIUM_EVENTS_CRASH_CHILD"

// TestIngestCrashChild is the child half of TestAckedEventsSurviveSIGKILL.
func TestIngestCrashChild(t *testing.T) {
	spec := os.Getenv(crashEnv)
	if spec == "" {
		t.Skip("run by TestAckedEventsSurviveSIGKILL")
	}
	dir, policy, _ := strings.Cut(spec, "|")
	cfg := DefaultConfig()
	var err error
	cfg.Sync, err = wal.ParseSyncPolicy(policy)
	ok(t, err)
	cfg.CheckpointInterval = 30 * time.Millisecond // crash during checkpoints too
	cfg.SegmentBytes = 8 << 10
	g, err := Open(dir, cfg, testCatalog(t, 64))
	ok(t, err)
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	for w := range 3 {
		go func() {
			for i := 0; ; i++ {
				// Each body clicks one item once: user "w<w>-<i>" clicks i<k>.
				user := fmt.Sprintf("w%d-%d", w, i)
				body := fmt.Sprintf(`{"type":"click","user_id":%q,"item_id":"i%d"}`, user, (w*1000+i)%64)
				res, err := g.Ingest([]byte(body), time.Now())
				if err != nil || res.Accepted != 1 {
					fmt.Fprintln(os.Stderr, err, res)
					os.Exit(3)
				}
				mu.Lock()
				fmt.Fprintf(out, "%s %d\n", user, (w*1000+i)%64)
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	select {}
}

// TestAckedEventsSurviveSIGKILL runs a child that ingests and acks events (with background
// checkpoints), kills it with SIGKILL, reopens the directory and checks that every acked
// event was applied: each acked user's history holds its click.
func TestAckedEventsSurviveSIGKILL(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("child")
	}
	for _, policy := range []string{"always", "none"} {
		t.Run(policy, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "events")
			cmd := exec.Command(os.Args[0], "-test.run=^TestIngestCrashChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), crashEnv+"="+dir+"|"+policy)
			stdout, err := cmd.StdoutPipe()
			ok(t, err)
			cmd.Stderr = os.Stderr
			ok(t, cmd.Start())
			acked := map[string]int{}
			sc := bufio.NewScanner(stdout)
			want := 600
			if testing.Short() {
				want = 150
			}
			deadline := time.Now().Add(20 * time.Second)
			read := func() {
				user, item, _ := strings.Cut(sc.Text(), " ")
				if k, err := strconv.Atoi(item); err == nil {
					acked[user] = k
				}
			}
			for sc.Scan() {
				read()
				if len(acked) >= want || time.Now().After(deadline) {
					ok(t, cmd.Process.Signal(syscall.SIGKILL))
					break
				}
			}
			for sc.Scan() {
				read()
			}
			_ = cmd.Wait()
			truth(t, len(acked) >= 10, "the child acked only %d events", len(acked))

			cat := testCatalog(t, 64)
			g, err := Open(dir, DefaultConfig(), cat)
			ok(t, err)
			defer g.Close()
			for user, k := range acked {
				got := g.State().Recent(user, "", nil)
				if len(got) != 1 || got[0].Item != dense(t, cat, fmt.Sprintf("i%d", k)) {
					t.Fatalf("acked click of %s on i%d recovered as %+v", user, k, got)
				}
			}
			t.Logf("%s: %d acked events recovered; %+v", policy, len(acked), g.Metrics(time.Now()).Recovery)
		})
	}
}

// TestHammer runs ingests, checkpoints and every read concurrently; run it with -race.
func TestHammer(t *testing.T) {
	dir := t.TempDir()
	cat := testCatalog(t, 64)
	cfg := DefaultConfig()
	cfg.Sync = wal.SyncNone
	cfg.SegmentBytes = 16 << 10
	g, err := Open(dir, cfg, cat)
	ok(t, err)
	st := g.State()
	rounds := 200
	if testing.Short() {
		rounds = 50
	}
	now := time.Now()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range rounds {
				var lines []string
				for range 10 {
					user := fmt.Sprintf("u%d", rng.IntN(20))
					item := fmt.Sprintf("i%d", rng.IntN(64))
					switch rng.IntN(5) {
					case 0:
						lines = append(lines, fmt.Sprintf(`{"type":"impression","user_id":%q,"request_id":"r%d","item_ids":[%q,"i1"]}`, user, i, item))
					case 1:
						lines = append(lines, fmt.Sprintf(`{"type":"item_update","item_id":%q,"stock":%d,"price":%d}`, item, rng.IntN(3), i))
					default:
						typ := []string{"view", "click", "add_to_cart", "purchase"}[rng.IntN(4)]
						lines = append(lines, fmt.Sprintf(`{"type":%q,"user_id":%q,"session_id":"s%d","item_id":%q}`, typ, user, w, item))
					}
				}
				if _, err := g.Ingest([]byte(strings.Join(lines, "\n")), now); err != nil {
					t.Error(err)
					return
				}
				if w == 0 && i%50 == 0 {
					if err := g.Checkpoint(); err != nil {
						t.Error(err)
						return
					}
				}
				if w == 1 && i%7 == 0 {
					_, _ = g.IngestFrom("kafka/t/0", int64(i), []byte(lines[0]), now)
				}
			}
		}()
	}
	var readers sync.WaitGroup
	for r := range 3 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			ids := []uint32{1, 2, 3, 40, 63, 500}
			cols := []int{0, 1, 5, 10, 11, 12, 13}
			var vec []float32
			var ex []uint32
			var feats []float32
			var cv []Scored
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				user := fmt.Sprintf("u%d", i%20)
				vec = st.SessionVector(user, "s1", now, vec)
				ex = st.AppendExcluded(user, "s0", now, ex[:0])
				feats = st.Gather(ids, cols, now, feats)
				cv = st.SessionCoVisited(user, "s2", nil, now, 10, cv[:0])
				_ = st.GatherUser(user, "", []int{0, 3}, now, nil)
				st.RecordServed([]byte(fmt.Sprintf("r%d", i%rounds)), fmt.Sprintf("v%d", r), user, "", ids[:3], now)
				_ = st.VariantCTR(now)
				_ = st.PopularityScore(now)(3)
				_ = g.Metrics(now)
				for _, x := range feats {
					if x != x || x < 0 {
						t.Errorf("feature value %v", x)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	m := g.Metrics(now)
	var accepted uint64
	for _, c := range m.ByType {
		accepted += c.Accepted
	}
	truth(t, accepted >= uint64(3*rounds*10), "accepted %d events", accepted)
	ok(t, g.Close())
	g, err = Open(dir, cfg, cat)
	ok(t, err)
	ok(t, g.Close())
}

func TestDuplicateInteractionsAreDropped(t *testing.T) {
	g, cat := memIngestor(t, 8, DefaultConfig())
	st := g.State()
	i1 := dense(t, cat, "i1")
	click := ev("click", "u1", "", "i1", 0)
	ingest(t, g, 0, click, ev("view", "u1", "", "i2", 0))
	ingest(t, g, 0, click) // a client's retry
	near(t, st.ItemCount(i1, TypeClick, 0, t0), 1, 1e-6, "clicks after a retried body")
	eq(t, len(st.Recent("u1", "", nil)), 2, "history")
	eq(t, g.Metrics(t0).Duplicates, uint64(1), "duplicates")
	ingest(t, g, 0, ev("click", "u1", "", "i1", time.Second)) // a second later: a new click
	near(t, st.ItemCount(i1, TypeClick, 0, t0.Add(time.Second)), 2, 1e-3, "clicks after a new click")
}

// TestCheckpointTakenWhileIngesting covers the two-phase checkpoint: events applied while
// the KV is being saved may be in the saved user state but not in the item state. After a
// restart each is applied exactly once to both.
func TestCheckpointTakenWhileIngesting(t *testing.T) {
	dir := t.TempDir()
	cat := testCatalog(t, 16)
	cfg := DefaultConfig()
	cfg.NoCheckpointOnClose = true
	g, err := Open(dir, cfg, cat)
	ok(t, err)
	ingest(t, g, time.Minute, ev("view", "u1", "", "i1", 0), ev("view", "u2", "", "i1", 0))
	const kbody = `{"type":"click","user_id":"k1","item_id":"i3","ts":"2026-11-22T10:00:05Z"}`
	g.checkpointHook = func() {
		// Between the phases: in the KV snapshot, not in the item state.
		ingest(t, g, time.Minute, ev("click", "u1", "", "i2", time.Second), ev("view", "u3", "", "i4", time.Second))
		_, err := g.IngestFrom("kafka/t/0", 7, []byte(kbody), t0.Add(time.Minute))
		ok(t, err)
	}
	ok(t, g.Checkpoint())
	g.checkpointHook = nil
	ingest(t, g, time.Minute, ev("click", "u1", "", "i5", 2*time.Second)) // after the checkpoint
	now := t0.Add(time.Minute)
	want := snapshotOf(t, g, cat, now)
	ok(t, g.Close())

	g, err = Open(dir, cfg, cat)
	ok(t, err)
	defer g.Close()
	rec := g.Metrics(now).Recovery
	truth(t, rec.CheckpointSeq == 1 && rec.Records == 2, "recovery %+v", rec)
	eq(t, g.Positions(), map[string]int64{}, "positions as of phase 1")
	// Kafka re-delivers the record after the checkpoint's position.
	_, err = g.IngestFrom("kafka/t/0", 7, []byte(kbody), now)
	ok(t, err)
	sameSnap(t, snapshotOf(t, g, cat, now), want)
	st := g.State()
	for _, c := range []struct {
		item string
		t    Type
		n    float64
	}{{"i1", TypeView, 2}, {"i2", TypeClick, 1}, {"i4", TypeView, 1}, {"i3", TypeClick, 1}, {"i5", TypeClick, 1}} {
		near(t, st.ItemCount(dense(t, cat, c.item), c.t, 1, now), c.n, 1e-3, "%s %s", c.item, c.t)
	}
	eq(t, len(st.Recent("u1", "", nil)), 3, "u1 history")
	eq(t, len(st.Recent("k1", "", nil)), 1, "k1 history")
	got := st.CoVisited([]uint32{dense(t, cat, "i2")}, 5, nil)
	eq(t, len(got), 2, "i2 co-visits (%v)", got)
	eq(t, got[0].Score, float32(1), "co-visit counted once")
}

func TestItemUpdatesSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	g, err := Open(dir, DefaultConfig(), testCatalog(t, 8))
	ok(t, err)
	ingest(t, g, 0, `{"type":"item_update","item_id":"i3","stock":0}`,
		`{"type":"item_update","item_id":"i4","price":9.5,"attributes":{"color":"blue"}}`)
	ok(t, g.Close()) // checkpoints; the WAL no longer holds the updates

	cat := testCatalog(t, 8) // the catalog reloads its files: i3 in stock again
	g, err = Open(dir, DefaultConfig(), cat)
	ok(t, err)
	defer g.Close()
	truth(t, !cat.Available(dense(t, cat, "i3")), "i3 is back in stock after a restart")
	col, _ := cat.FeatureColumn("price")
	eq(t, cat.ItemFeature(dense(t, cat, "i4"), col), float32(9.5), "price after a restart")
	ai, _ := cat.AttributeIndex("color")
	eq(t, cat.AttributeValue(ai, dense(t, cat, "i4")), "blue", "color after a restart")
}

// TestResultJSONIsValidForAnyInput: a rejection quoting invalid UTF-8 or control
// characters from the client still yields valid JSON.
func TestResultJSONIsValidForAnyInput(t *testing.T) {
	r := Result{Rejected: 1, Rejections: []Rejection{{Index: 0, Type: "te\xffle\u0001", Code: CodeUnknownType, Error: "unknown type \"te\xffle\" 𝄞"}}}
	b := r.AppendJSON(nil)
	if !json.Valid(b) {
		t.Fatalf("invalid JSON: %s", b)
	}
}
