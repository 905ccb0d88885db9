package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// serve starts h on 127.0.0.1:0 and returns the URL of BaselinePath on it.
func serve(t *testing.T, h fasthttp.RequestHandler) string {
	t.Helper()
	addr, stop, err := StartServer("127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("stop server: %v", err)
		}
	})
	return "http://" + addr + BaselinePath
}

func run(t *testing.T, cfg Config) *Report {
	t.Helper()
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return rep
}

func requireNoErrors(t *testing.T, rep *Report) {
	t.Helper()
	if n := rep.Errors.Total(); n != 0 {
		t.Fatalf("errors = %s, want none; samples %q", rep.Errors.String(), rep.Errors.Samples)
	}
}

func requireOrderedQuantiles(t *testing.T, l Latency) {
	t.Helper()
	if !(l.Min <= l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) || l.Min <= 0 {
		t.Fatalf("quantiles out of order or zero: %+v", l)
	}
}

func TestClosedLoopBaseline(t *testing.T) {
	var served atomic.Int64
	url := serve(t, func(ctx *fasthttp.RequestCtx) {
		served.Add(1)
		BaselineHandler(ctx)
	})
	body, err := TemplateBody([]byte(`{"user_id":"{{user}}"}`), 10000)
	if err != nil {
		t.Fatal(err)
	}
	rep := run(t, Config{
		Name: "baseline", URL: url, Concurrency: 4, Duration: 300 * time.Millisecond,
		Body: body, Check: CheckContains(`"items"`),
	})
	requireNoErrors(t, rep)
	if rep.Requests < 10 {
		t.Fatalf("only %d requests in 300ms", rep.Requests)
	}
	if rep.Requests > served.Load() {
		t.Fatalf("reported %d requests, server saw %d", rep.Requests, served.Load())
	}
	if rep.Latency.Count != rep.Requests {
		t.Fatalf("latency count %d != requests %d", rep.Latency.Count, rep.Requests)
	}
	if rep.Mode != ModeClosed || rep.Concurrency != 4 || rep.RPS <= 0 || rep.Elapsed < 300*time.Millisecond {
		t.Fatalf("bad report header: %+v", rep)
	}
	requireOrderedQuantiles(t, rep.Latency)
}

func TestClosedLoopRequestCountAndStatusErrors(t *testing.T) {
	var n atomic.Int64
	url := serve(t, func(ctx *fasthttp.RequestCtx) {
		if n.Add(1)%10 == 0 {
			ctx.Error("boom", fasthttp.StatusInternalServerError)
			return
		}
		BaselineHandler(ctx)
	})
	rep := run(t, Config{URL: url, Concurrency: 4, Requests: 200})
	if rep.Requests != 200 || n.Load() != 200 {
		t.Fatalf("requests = %d, server saw %d, want 200", rep.Requests, n.Load())
	}
	if got := rep.Errors.Status[500]; got != 20 {
		t.Fatalf("500s = %d, want 20 (errors %s)", got, rep.Errors.String())
	}
	if got := rep.Errors.Total(); got != 20 {
		t.Fatalf("total errors = %d, want 20", got)
	}
	if rep.Latency.Count != 200 {
		t.Fatalf("latency count = %d, want every response (200)", rep.Latency.Count)
	}
	if len(rep.Errors.Samples) != 1 || !strings.Contains(rep.Errors.Samples[0], "status 500: boom") {
		t.Fatalf("samples = %q", rep.Errors.Samples)
	}
}

func TestCheckHook(t *testing.T) {
	var n atomic.Int64
	url := serve(t, func(ctx *fasthttp.RequestCtx) {
		if n.Add(1)%5 == 0 {
			ctx.SetBodyString(`{"fallback":true}`)
			return
		}
		BaselineHandler(ctx)
	})
	rep := run(t, Config{URL: url, Concurrency: 3, Requests: 100, Check: CheckContains(`"items"`)})
	if rep.Errors.Check != 20 || rep.Errors.Total() != 20 {
		t.Fatalf("errors = %s, want 20 check errors", rep.Errors.String())
	}
}

func TestWarmupExcluded(t *testing.T) {
	var n atomic.Int64
	url := serve(t, func(ctx *fasthttp.RequestCtx) {
		n.Add(1)
		BaselineHandler(ctx)
	})
	rep := run(t, Config{URL: url, Concurrency: 2, Requests: 50, Warmup: 100 * time.Millisecond})
	if rep.Requests != 50 || rep.Latency.Count != 50 {
		t.Fatalf("requests = %d (latency count %d), want 50", rep.Requests, rep.Latency.Count)
	}
	if n.Load() <= 50 {
		t.Fatalf("server saw %d requests, want warm-up ones on top of 50", n.Load())
	}
}

func TestTransportAndTimeoutErrors(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		rep := run(t, Config{URL: "http://" + addr + "/", Concurrency: 2, Requests: 5})
		if rep.Errors.Transport != 5 || rep.Errors.Total() != 5 || rep.Latency.Count != 0 {
			t.Fatalf("errors = %s, latency count %d; want 5 transport errors and no latency", rep.Errors.String(), rep.Latency.Count)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		url := serve(t, func(ctx *fasthttp.RequestCtx) {
			time.Sleep(300 * time.Millisecond)
			BaselineHandler(ctx)
		})
		rep := run(t, Config{URL: url, Concurrency: 2, Requests: 4, Timeout: 30 * time.Millisecond})
		if rep.Errors.Timeout != 4 || rep.Errors.Total() != 4 {
			t.Fatalf("errors = %s, want 4 timeouts; samples %q", rep.Errors.String(), rep.Errors.Samples)
		}
	})
}

func TestFixedRateHitsTarget(t *testing.T) {
	var n atomic.Int64
	url := serve(t, func(ctx *fasthttp.RequestCtx) {
		n.Add(1)
		BaselineHandler(ctx)
	})
	rep := run(t, Config{URL: url, Concurrency: 4, Rate: 200, Duration: time.Second})
	requireNoErrors(t, rep)
	// 200 are scheduled; the bounds only catch a broken scheduler, not a slow machine.
	if rep.Requests < 140 || rep.Requests > 260 {
		t.Fatalf("requests = %d, want 200 ±30%%", rep.Requests)
	}
	if rep.Mode != ModeOpen || rep.TargetRate != 200 || rep.SendLag == nil || rep.SendLag.Count != rep.Requests {
		t.Fatalf("bad fixed-rate report: %+v", rep)
	}
	if n.Load() != rep.Requests {
		t.Fatalf("server saw %d, report says %d", n.Load(), rep.Requests)
	}
	requireOrderedQuantiles(t, rep.Latency)
}

func TestFixedRateDropsBeyondMaxInFlight(t *testing.T) {
	url := serve(t, func(ctx *fasthttp.RequestCtx) {
		time.Sleep(50 * time.Millisecond)
		BaselineHandler(ctx)
	})
	rep := run(t, Config{URL: url, Concurrency: 1, MaxInFlight: 1, Rate: 200, Duration: 300 * time.Millisecond})
	// Requests are scheduled at k*5ms for k = 0..59; each is either sent or dropped.
	if rep.Requests+rep.Errors.Dropped != 60 {
		t.Fatalf("sent %d + dropped %d != 60 scheduled", rep.Requests, rep.Errors.Dropped)
	}
	if rep.Errors.Dropped == 0 || rep.Errors.Total() != rep.Errors.Dropped {
		t.Fatalf("errors = %s, want only drops", rep.Errors.String())
	}
}

// countAtLeast returns how many recorded values are at least d, to bucket precision.
func countAtLeast(h *Histogram, d time.Duration) int64 {
	var n uint64
	for i := bucketOf(uint64(d)); i < h.top; i++ {
		n += h.counts[i]
	}
	return int64(n)
}

// TestFixedRateCorrectsCoordinatedOmission stalls a server for 300 ms once. A closed-loop
// client with one connection waits politely and sees one slow request; a fixed-rate client
// keeps scheduling during the stall and charges the wait to every request scheduled in it.
func TestFixedRateCorrectsCoordinatedOmission(t *testing.T) {
	const stall = 300 * time.Millisecond
	stallingServer := func() string {
		var mu sync.Mutex
		var n int
		return serve(t, func(ctx *fasthttp.RequestCtx) {
			mu.Lock()
			defer mu.Unlock()
			if n++; n == 20 {
				time.Sleep(stall)
			}
			BaselineHandler(ctx)
		})
	}

	closed := run(t, Config{URL: stallingServer(), Concurrency: 1, Duration: time.Second})
	requireNoErrors(t, closed)
	// The stalled request, plus at most two hit by a scheduling hiccup on a busy machine.
	if got := countAtLeast(closed.Hist, stall); got < 1 || got > 3 {
		t.Fatalf("closed loop: %d requests took >= %v, want the stalled one", got, stall)
	}

	open := run(t, Config{URL: stallingServer(), Concurrency: 1, Rate: 100, Duration: time.Second})
	requireNoErrors(t, open)
	// About 30 requests are scheduled during the stall, the first ~20 of them at least
	// 100 ms before it ends.
	if got := countAtLeast(open.Hist, 100*time.Millisecond); got < 10 {
		t.Fatalf("fixed rate: only %d requests took >= 100ms; the stall was not charged to queued requests", got)
	}
	if open.Latency.P90 < 100*time.Millisecond {
		t.Fatalf("fixed rate: p90 = %v, want >= 100ms from the stall", open.Latency.P90)
	}
	if open.SendLag.Max < 100*time.Millisecond {
		t.Fatalf("fixed rate: max send lag = %v, want the stall to show as send lag", open.SendLag.Max)
	}
	// Every scheduled request is in SchedulerLag, and the wait was for the busy worker,
	// not for the scheduler (100 ms is far above any timer or scheduling delay).
	if sl := open.SchedulerLag; sl.Count != 100 || sl.P90 >= 100*time.Millisecond {
		t.Fatalf("fixed rate: scheduler lag %+v, want 100 values with p90 < 100ms", sl)
	}
}

func TestRunCancel(t *testing.T) {
	url := serve(t, BaselineHandler)
	for _, rate := range []float64{0, 0.1} { // rate 0.1/s: the scheduler sleeps 10 s per request
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		begin := time.Now()
		rep, err := Run(ctx, Config{URL: url, Rate: rate, Duration: time.Minute})
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || rep == nil {
			t.Fatalf("rate %v: Run = %v, %v; want a report and the context error", rate, rep, err)
		}
		if time.Since(begin) > 5*time.Second {
			t.Fatalf("rate %v: Run did not stop on cancel", rate)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{Duration: time.Second},
		{URL: "http://127.0.0.1:1/"},
		{URL: "ftp://127.0.0.1:1/", Requests: 1},
		{URL: "http:///path", Requests: 1},
		{URL: "http://127.0.0.1:1/", Requests: 1, Rate: -1},
	} {
		if _, err := Run(context.Background(), cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("Run(%+v) error = %v, want ErrConfig", cfg, err)
		}
	}
}

func TestTemplateBody(t *testing.T) {
	f := func(tmpl string, users int, i int, want string) {
		t.Helper()
		body, err := TemplateBody([]byte(tmpl), users)
		if err != nil {
			t.Fatalf("TemplateBody(%q, %d): %v", tmpl, users, err)
		}
		got := string(body(i, nil))
		if !regexp.MustCompile("^" + want + "$").MatchString(got) {
			t.Fatalf("TemplateBody(%q, %d)(%d) = %q, want match for %q", tmpl, users, i, got, want)
		}
	}
	f(`{"user_id":"{{user}}"}`, 10, 3, `\{"user_id":"u[0-9]"\}`)
	f(`{"user_id": "u42", "k": 20}`, 10000, 3, `\{"user_id": "u[0-9]{1,4}", "k": 20\}`)
	f(`{"request":"{{i}}","user_id":"{{user}}","again":"{{i}}"}`, 1, 77, `\{"request":"77","user_id":"u0","again":"77"\}`)
	f(`{"static":true}`, 0, 5, `\{"static":true\}`)

	for _, bad := range []struct {
		tmpl  string
		users int
	}{{`{"k":20}`, 10}, {`{"user_id":"{{user}}"}`, 0}} {
		if _, err := TemplateBody([]byte(bad.tmpl), bad.users); err == nil {
			t.Errorf("TemplateBody(%q, %d): want an error", bad.tmpl, bad.users)
		}
	}

	// Users are spread over the whole range.
	body, err := TemplateBody([]byte(`{{user}}`), 10000)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var buf []byte
	for i := range 100000 {
		buf = body(i, buf[:0])
		seen[string(buf)] = true
	}
	if len(seen) < 9900 {
		t.Fatalf("100000 requests hit only %d of 10000 users", len(seen))
	}
}

func TestBaselineBodyShape(t *testing.T) {
	var resp struct {
		RequestID string `json:"request_id"`
		Items     []struct {
			ID    string  `json:"id"`
			Score float64 `json:"score"`
		} `json:"items"`
		Fallback *bool `json:"fallback"`
		TookUS   *int  `json:"took_us"`
	}
	if err := json.Unmarshal(BaselineBody(), &resp); err != nil {
		t.Fatal(err)
	}
	if resp.RequestID == "" || len(resp.Items) != 20 || resp.Fallback == nil || *resp.Fallback || resp.TookUS == nil {
		t.Fatalf("unexpected baseline body %s", BaselineBody())
	}
	for k, it := range resp.Items {
		if !regexp.MustCompile(`^i[0-9]{1,5}$`).MatchString(it.ID) || (k > 0 && it.Score >= resp.Items[k-1].Score) {
			t.Fatalf("item %d = %+v: want a demo id and descending scores", k, it)
		}
	}

	url := serve(t, BaselineHandler)
	for _, tc := range []struct {
		method, path string
		status       int
	}{{"POST", BaselinePath, 200}, {"GET", BaselinePath, 405}, {"POST", "/other", 404}} {
		req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI(strings.TrimSuffix(url, BaselinePath) + tc.path)
		req.Header.SetMethod(tc.method)
		if err := fasthttp.Do(req, res); err != nil {
			t.Fatal(err)
		}
		if res.StatusCode() != tc.status {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, res.StatusCode(), tc.status)
		}
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(res)
	}
}

func TestReportFormats(t *testing.T) {
	rep := &Report{
		Name: "engine", Mode: ModeClosed, Concurrency: 2, Elapsed: 2 * time.Second,
		Requests: 100, RPS: 50, Errors: Errors{Status: map[int]int64{503: 2}, Timeout: 1},
		Latency: Latency{Count: 97, Min: time.Millisecond, P50: 50 * time.Millisecond, P90: 90 * time.Millisecond,
			P99: 99 * time.Millisecond, P999: 99900 * time.Microsecond, Max: 100 * time.Millisecond, Mean: 50 * time.Millisecond},
	}
	if got, want := rep.Errors.String(), "3 (503×2 timeout×1)"; got != want {
		t.Fatalf("Errors.String() = %q, want %q", got, want)
	}
	s := rep.String()
	for _, want := range []string{"engine: closed c=2", "100 requests in 2.00s, 50 req/s", "p50 50.0ms", "p99 99.0ms", "max 100ms"} {
		if !strings.Contains(s, want) {
			t.Errorf("String() = %q, lacks %q", s, want)
		}
	}
	md := rep.Markdown()
	header := strings.Split(MarkdownHeader(), "\n")
	if len(header) != 2 || strings.Contains(md, "\n") || strings.Count(md, "|") != strings.Count(header[0], "|") ||
		strings.Count(header[1], "|") != strings.Count(header[0], "|") {
		t.Errorf("Markdown row %q does not match header %q", md, MarkdownHeader())
	}
	var back map[string]any
	if err := json.Unmarshal(rep.JSON(), &back); err != nil {
		t.Fatal(err)
	}
	lat := back["latency"].(map[string]any)
	if back["requests"].(float64) != 100 || lat["p99_ns"].(float64) != float64(rep.Latency.P99) {
		t.Fatalf("JSON = %s", rep.JSON())
	}
}

func TestRatio(t *testing.T) {
	a := &Report{Name: "engine", RPS: 1000, Latency: Latency{P50: 2 * time.Millisecond, P99: 9 * time.Millisecond}}
	b := &Report{Name: "baseline", RPS: 4000, Latency: Latency{P50: time.Millisecond, P99: 3 * time.Millisecond}}
	c := Ratio(a, b)
	if c.Throughput != 0.25 || c.P50 != 2 || c.P99 != 3 || c.P90 != 0 {
		t.Fatalf("Ratio = %+v", c)
	}
	if got, want := c.String(), "engine/baseline: req/s 0.25×, p50 2.00×, p90 0.00×, p99 3.00×, p99.9 0.00×"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
}

func TestFmtDur(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0ns", 999: "999ns", 1500: "1.50µs", 25300: "25.3µs", 512 * time.Microsecond: "512µs",
		1200 * time.Microsecond: "1.20ms", 2 * time.Second: "2.00s", 75 * time.Second: "75.0s",
	} {
		if got := fmtDur(d); got != want {
			t.Errorf("fmtDur(%d) = %q, want %q", d, got, want)
		}
	}
}
