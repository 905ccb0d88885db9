package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/podium-rank/podium/bench/loadgen"
	"github.com/podium-rank/podium/engine"
	"github.com/podium-rank/podium/engine/demo"
	"github.com/podium-rank/podium/engine/retrieval"
	"github.com/podium-rank/podium/engine/server"
)

// envInt reads an integer knob from the environment.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

var (
	demoOnce sync.Once
	demoEng  *engine.Engine
	demoErr  error
	demoTook time.Duration
)

// demoEngine builds the demo catalog once per test binary: 100k items by default, or
// PODIUM_BENCH_ITEMS; PODIUM_BENCH_ANN and PODIUM_BENCH_POPULAR set the candidates
// retrieved (default 500 + 50), PODIUM_BENCH_INDEX the index (default hnsw) and
// PODIUM_BENCH_PIPELINE a pipeline config to rank with
// (default the native blend), e.g. plugins/demo.pipeline.json.
func demoEngine(tb testing.TB) *engine.Engine {
	demoOnce.Do(func() {
		t0 := time.Now()
		cfg := demo.DefaultConfig()
		cfg.Items = envInt("PODIUM_BENCH_ITEMS", cfg.Items)
		rc := retrieval.Config{ANN: envInt("PODIUM_BENCH_ANN", 500), Popular: envInt("PODIUM_BENCH_POPULAR", 50)}
		demoEng, demoErr = engine.New(engine.Config{Dim: cfg.Dim, Retrieval: rc, Index: os.Getenv("PODIUM_BENCH_INDEX")})
		if demoErr == nil {
			demoErr = demoEng.LoadDemo(cfg)
		}
		if p := os.Getenv("PODIUM_BENCH_PIPELINE"); demoErr == nil && p != "" {
			if !filepath.IsAbs(p) {
				p = filepath.Join(repoRoot(), p)
			}
			if demoErr = engine.BuildPipelinePlugins(repoRoot(), p); demoErr == nil {
				demoErr = demoEng.LoadPipelineFile(p)
			}
		}
		if demoErr == nil {
			demoEng.SetReady()
		}
		demoTook = time.Since(t0)
	})
	if demoErr != nil {
		tb.Fatal(demoErr)
	}
	return demoEng
}

// rankBody is the request the benchmarks send: a known user, default k (20), so 500 ANN
// candidates plus 50 popular ones go through the pipeline.
func rankBody(i int) []byte {
	return []byte(`{"user_id":"u` + strconv.Itoa(i%10000) + `","k":20}`)
}

func serveCtx(h fasthttp.RequestHandler, ctx *fasthttp.RequestCtx, body []byte) {
	ctx.Request.Reset()
	ctx.Response.Reset()
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.SetRequestURI("/v1/rank")
	ctx.Request.SetBody(body)
	h(ctx)
}

// BenchmarkRankHandler calls the /v1/rank handler in-process (no network) beside the bare
// baseline handler, so their ratio is the engine's own cost per request.
func BenchmarkRankHandler(b *testing.B) {
	e := demoEngine(b)
	srv := server.New(e, server.Config{})
	bodies := make([][]byte, 1000)
	for i := range bodies {
		bodies[i] = rankBody(i * 7919)
	}
	for _, c := range []struct {
		name string
		h    fasthttp.RequestHandler
	}{{"engine", srv.Handle}, {"baseline", loadgen.BaselineHandler}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var ctx fasthttp.RequestCtx
				i := 0
				for pb.Next() {
					serveCtx(c.h, &ctx, bodies[i%len(bodies)])
					if ctx.Response.StatusCode() != 200 {
						b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
					}
					i++
				}
			})
		})
	}
}

// TestRankLoad drives the engine and the bare baseline over loopback with the load
// generator and prints both reports and their ratio. It is a measurement, not a check, so
// it runs only with PODIUM_BENCH=1:
//
//	PODIUM_BENCH=1 go test ./bench -run TestRankLoad -v -timeout 30m
//
// PODIUM_BENCH_SECONDS sets the measured seconds per run (default 10) and
// PODIUM_BENCH_CONC one concurrency to run instead of 2 and 32.
func TestRankLoad(t *testing.T) {
	if os.Getenv("PODIUM_BENCH") == "" {
		t.Skip("measurement; run with PODIUM_BENCH=1")
	}
	e := demoEngine(t)
	t.Logf("demo catalog: %d items loaded and indexed in %v", e.Catalog().LiveItems(), demoTook.Round(time.Millisecond))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(e, server.Config{})
	go srv.Serve(ln)
	defer srv.Shutdown()
	baseAddr, stopBase, err := loadgen.StartServer("127.0.0.1:0", loadgen.BaselineHandler)
	if err != nil {
		t.Fatal(err)
	}
	defer stopBase()

	body, err := loadgen.TemplateBody([]byte(`{"user_id":"{{user}}","k":20}`), 10000)
	if err != nil {
		t.Fatal(err)
	}
	secs := time.Duration(envInt("PODIUM_BENCH_SECONDS", 10)) * time.Second
	concs := []int{2, 32}
	if c := envInt("PODIUM_BENCH_CONC", 0); c > 0 {
		concs = []int{c}
	}
	fmt.Println(loadgen.MarkdownHeader())
	for _, c := range concs {
		var reps [2]*loadgen.Report
		for i, target := range []string{"http://" + ln.Addr().String(), "http://" + baseAddr} {
			name := []string{"engine", "baseline"}[i]
			rep, err := loadgen.Run(context.Background(), loadgen.Config{
				Name: fmt.Sprintf("%s c=%d", name, c), URL: target + "/v1/rank", Body: body,
				Concurrency: c, Duration: secs, Warmup: time.Second,
				Check: loadgen.CheckContains(`"items":[{`),
			})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Errors.Total() != 0 {
				t.Errorf("%s: %d errors: %s", rep.Name, rep.Errors.Total(), rep.Errors.String())
			}
			reps[i] = rep
			fmt.Println(rep.Markdown())
		}
		fmt.Println(loadgen.Ratio(reps[0], reps[1]).String())
	}
}
