package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/podium-rank/podium/bench/loadgen"
	"github.com/podium-rank/podium/engine/events"
	"github.com/podium-rank/podium/engine/events/wal"
	"github.com/podium-rank/podium/engine/server"
)

// eventsBody returns a BodyFunc of batches of n click events, each from its own user, on
// items spread over the catalog, so that none is a duplicate.
func eventsBody(n, items int) loadgen.BodyFunc {
	return func(i int, dst []byte) []byte {
		dst = dst[:0]
		for j := 0; j < n; j++ {
			dst = append(dst, `{"type":"click","user_id":"lu`...)
			dst = strconv.AppendInt(dst, int64(i), 10)
			dst = append(dst, '_')
			dst = strconv.AppendInt(dst, int64(j), 10)
			dst = append(dst, `","item_id":"i`...)
			dst = strconv.AppendInt(dst, int64((i*n+j)*7919%items), 10)
			dst = append(dst, "\"}\n"...)
		}
		return dst
	}
}

// TestEventsLoad measures, over loopback on the demo catalog: HTTP ingest throughput
// (events/s) under each fsync policy, and /v1/rank latency under mixed load (90% rank
// requests, 10% event batches of 100) as a ratio to rank-only load in the same run.
//
//	PODIUM_BENCH=1 go test ./bench -run TestEventsLoad -v -timeout 30m
func TestEventsLoad(t *testing.T) {
	if os.Getenv("PODIUM_BENCH") == "" {
		t.Skip("measurement; run with PODIUM_BENCH=1")
	}
	e := demoEngine(t)
	secs := time.Duration(envInt("PODIUM_BENCH_SECONDS", 10)) * time.Second
	const batch = 100
	items := e.Catalog().LiveItems()
	for _, pol := range []wal.SyncPolicy{wal.SyncAlways, wal.SyncInterval, wal.SyncNone} {
		cfg := events.DefaultConfig()
		cfg.Sync = pol
		if old := e.Events(); old != nil {
			old.Close()
		}
		if err := e.OpenEvents(t.TempDir(), cfg); err != nil {
			t.Fatal(err)
		}
		url := serve(t)
		rep, err := loadgen.Run(context.Background(), loadgen.Config{
			Name: fmt.Sprintf("ingest fsync=%v", pol), URL: url + "/v1/events", Body: eventsBody(batch, items),
			Concurrency: 4, Duration: secs, Warmup: time.Second, Check: loadgen.CheckContains(`"accepted":100`),
		})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("%s: %.0f events/s (%d batches of %d, errors %d), p99 per batch %v\n", rep.Name, rep.RPS*batch, rep.Requests, batch, rep.Errors.Total(), rep.Latency.P99)
	}

	// Mixed load: rank at concurrency 2, alone and then beside event batches at a ninth of
	// the rank rate (so 10% of requests are event batches).
	url := serve(t)
	body, _ := loadgen.TemplateBody([]byte(`{"user_id":"{{user}}","k":20}`), 10000)
	rankCfg := loadgen.Config{URL: url + "/v1/rank", Body: body, Concurrency: 2, Duration: secs, Warmup: time.Second,
		Check: loadgen.CheckContains(`"items":[{`)}
	evCfg := loadgen.Config{URL: url + "/v1/events", Body: eventsBody(batch, items), Concurrency: 2, Duration: secs, Warmup: time.Second}
	alone := mixedLoad(t, rankCfg, evCfg, "rank", "")
	// The closed loop above saturates both cores with rank requests, so any other work
	// shows up in their latency. A server runs below saturation: the same comparison at a
	// fixed rank rate of half the closed-loop maximum.
	rankCfg.Rate = alone.RPS / 2
	rankCfg.Concurrency = 8 // workers of the fixed-rate client; the server still admits 2 at a time
	mixedLoad(t, rankCfg, evCfg, "rank at half of max", " at half")
}

// mixedLoad runs rank alone, then rank beside event batches at a ninth of the rank rate
// (the configured one, else the measured closed-loop one), prints both and their ratio,
// and returns the rank-only report.
func mixedLoad(t *testing.T, rankCfg, evCfg loadgen.Config, name, suffix string) *loadgen.Report {
	t.Helper()
	rankCfg.Name = name + " only"
	alone, err := loadgen.Run(context.Background(), rankCfg)
	if err != nil {
		t.Fatal(err)
	}
	rankCfg.Name = name + " beside events"
	evCfg.Name = "event batches" + suffix
	evCfg.Rate = alone.RPS / 9
	if rankCfg.Rate > 0 {
		evCfg.Rate = rankCfg.Rate / 9
	}
	var mixed, evRep *loadgen.Report
	var mErr, eErr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		mixed, mErr = loadgen.Run(context.Background(), rankCfg)
	}()
	go func() {
		defer wg.Done()
		evRep, eErr = loadgen.Run(context.Background(), evCfg)
	}()
	wg.Wait()
	if mErr != nil || eErr != nil {
		t.Fatal(mErr, eErr)
	}
	fmt.Println(loadgen.MarkdownHeader())
	fmt.Println(alone.Markdown())
	fmt.Println(mixed.Markdown())
	fmt.Println(evRep.Markdown())
	fmt.Println(loadgen.Ratio(mixed, alone).String())
	return alone
}

// serve starts the engine's server on a loopback port for the rest of the test.
func serve(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(demoEngine(t), server.Config{})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return "http://" + ln.Addr().String()
}
