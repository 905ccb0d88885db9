package kafka

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/podium-rank/podium/engine/catalog"
	"github.com/podium-rank/podium/engine/events"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

const topic = "events"

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testCatalog(t testing.TB, n int) *catalog.Catalog {
	t.Helper()
	cat := catalog.New(catalog.Config{Dim: 2})
	for k := range n {
		_, err := cat.Upsert(&catalog.Item{ID: "i" + strconv.Itoa(k), Embedding: []float32{1, float32(k)}, InStock: true})
		must(t, err)
	}
	return cat
}

func cluster(t testing.TB, partitions int32) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic))
	must(t, err)
	t.Cleanup(c.Close)
	return c
}

func producer(t testing.TB, c *kfake.Cluster) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	must(t, err)
	t.Cleanup(cl.Close)
	return cl
}

// produceClicks produces n records, each one click by user u<from+i> on item i<(from+i)%items>.
func produceClicks(t testing.TB, cl *kgo.Client, from, n, items int) {
	t.Helper()
	var recs []*kgo.Record
	for i := from; i < from+n; i++ {
		recs = append(recs, &kgo.Record{Value: fmt.Appendf(nil,
			`{"type":"click","user_id":"u%d","item_id":"i%d"}`, i, i%items)})
	}
	must(t, cl.ProduceSync(context.Background(), recs...).FirstErr())
}

func start(t testing.TB, c *kfake.Cluster, g *events.Ingestor) *Consumer {
	t.Helper()
	con, err := New(Config{Brokers: c.ListenAddrs(), Topic: topic, PartitionCheck: 200 * time.Millisecond}, g)
	must(t, err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := con.Run(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() { con.Close(); wg.Wait() })
	return con
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// totalClicks sums the decayed click counts of all items at now (the 24h window, so that
// a test's few seconds do not matter to 1e-3).
func totalClicks(g *events.Ingestor, cat *catalog.Catalog, now time.Time) float64 {
	var s float64
	for id := range uint32(cat.ItemCap()) {
		s += g.State().ItemCount(id, events.TypeClick, 1, now)
	}
	return s
}

func near(t testing.TB, got, want float64, what string) {
	t.Helper()
	if got < want-1e-2 || got > want+1e-2 {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func TestConsumeAppliesEvents(t *testing.T) {
	c := cluster(t, 3)
	p := producer(t, c)
	cat := testCatalog(t, 10)
	g, err := events.Open("", events.DefaultConfig(), cat)
	must(t, err)
	produceClicks(t, p, 0, 60, 10)
	// A batch record (JSON array), a record with one bad event, and one that is not JSON.
	must(t, p.ProduceSync(context.Background(),
		&kgo.Record{Value: []byte(`[{"type":"view","session_id":"s","item_id":"i1"},{"type":"view","session_id":"s","item_id":"i2"}]`)},
		&kgo.Record{Value: []byte(`{"type":"view","session_id":"s","item_id":"i3"}` + "\n" + `{"type":"view"}`)},
		&kgo.Record{Value: []byte(`garbage`)},
	).FirstErr())
	con := start(t, c, g)
	waitFor(t, "63 records", func() bool { return con.Stats().Records == 63 })
	st := con.Stats()
	if st.Events != 63 || st.Rejected != 1 || st.BadRecords != 1 || st.Partitions != 3 {
		t.Fatalf("stats %+v", st)
	}
	now := time.Now()
	near(t, totalClicks(g, cat, now), 60, "clicks applied")
	if got := g.State().Recent("", "s", nil); len(got) != 3 {
		t.Fatalf("session s has %d interactions, want 3", len(got))
	}
	// Positions are offset+1 per partition, and cover all 63 records.
	var sum int64
	for p := int32(0); p < 3; p++ {
		sum += g.Positions()[Source(topic, p)]
	}
	if sum != 63 {
		t.Fatalf("positions %v sum to %d", g.Positions(), sum)
	}
	// New records keep flowing in.
	produceClicks(t, p, 60, 9, 10)
	waitFor(t, "72 records", func() bool { return con.Stats().Records == 72 })
	near(t, totalClicks(g, cat, time.Now()), 69, "clicks after more records")
	waitFor(t, "no lag", func() bool { return con.Stats().Lag == 0 })
}

// TestRestartResumesFromCheckpointedOffsets: consume, checkpoint, stop; produce more while
// down; restart from the directory: every event is applied exactly once.
func TestRestartResumesFromCheckpointedOffsets(t *testing.T) {
	c := cluster(t, 2)
	p := producer(t, c)
	cat := testCatalog(t, 10)
	dir := t.TempDir()
	g, err := events.Open(dir, events.DefaultConfig(), cat)
	must(t, err)
	produceClicks(t, p, 0, 40, 10)
	con, err := New(Config{Brokers: c.ListenAddrs(), Topic: topic}, g)
	must(t, err)
	done := make(chan error)
	go func() { done <- con.Run(context.Background()) }()
	waitFor(t, "40 records", func() bool { return con.Stats().Records == 40 })
	con.Close()
	must(t, <-done)
	must(t, g.Close()) // writes the checkpoint with the offsets

	produceClicks(t, p, 40, 25, 10) // while the engine is down

	g, err = events.Open(dir, events.DefaultConfig(), cat)
	must(t, err)
	defer g.Close()
	near(t, totalClicks(g, cat, time.Now()), 40, "clicks restored from the checkpoint")
	con2 := start(t, c, g)
	waitFor(t, "25 new records", func() bool { return con2.Stats().Records == 25 })
	time.Sleep(100 * time.Millisecond) // anything re-consumed would show up now
	if st := con2.Stats(); st.Records != 25 {
		t.Fatalf("the restarted consumer read %d records, want the 25 new ones", st.Records)
	}
	near(t, totalClicks(g, cat, time.Now()), 65, "clicks after the restart")
	for i := range 65 {
		if got := g.State().Recent("u"+strconv.Itoa(i), "", nil); len(got) != 1 {
			t.Fatalf("user u%d has %d clicks, want exactly 1", i, len(got))
		}
	}
}

// TestEveryReplicaSeesEveryEvent: two engines consuming the same topic both apply all of it.
func TestEveryReplicaSeesEveryEvent(t *testing.T) {
	c := cluster(t, 4)
	p := producer(t, c)
	produceClicks(t, p, 0, 80, 10)
	var ings []*events.Ingestor
	var cats []*catalog.Catalog
	for range 2 {
		cat := testCatalog(t, 10)
		g, err := events.Open("", events.DefaultConfig(), cat)
		must(t, err)
		con := start(t, c, g)
		waitFor(t, "80 records", func() bool { return con.Stats().Records == 80 })
		ings, cats = append(ings, g), append(cats, cat)
	}
	for i, g := range ings {
		near(t, totalClicks(g, cats[i], time.Now()), 80, fmt.Sprintf("replica %d clicks", i))
	}
}

func TestStartAtLatest(t *testing.T) {
	c := cluster(t, 1)
	p := producer(t, c)
	produceClicks(t, p, 0, 10, 10)
	cat := testCatalog(t, 10)
	g, err := events.Open("", events.DefaultConfig(), cat)
	must(t, err)
	con, err := New(Config{Brokers: c.ListenAddrs(), Topic: topic, StartAt: "latest"}, g)
	must(t, err)
	go func() { _ = con.Run(context.Background()) }()
	defer con.Close()
	waitFor(t, "the partition", func() bool { return con.Stats().Partitions == 1 })
	time.Sleep(200 * time.Millisecond)
	produceClicks(t, p, 10, 3, 10)
	waitFor(t, "3 new records", func() bool { return con.Stats().Records == 3 })
	near(t, totalClicks(g, cat, time.Now()), 3, "clicks from latest")
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{{Topic: "t"}, {Brokers: []string{"x"}}, {Brokers: []string{"x"}, Topic: "t", StartAt: "middle"}} {
		if _, err := New(cfg, nil); err == nil {
			t.Fatalf("New(%+v) accepted", cfg)
		}
	}
}
