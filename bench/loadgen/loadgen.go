// Package loadgen drives HTTP load against a URL in closed-loop or fixed-rate (open-loop)
// mode and reports throughput, errors by kind and latency quantiles; it also serves the baseline.
//
// Both modes reuse one request, one response and one body buffer per worker and record
// into per-worker histograms that are merged at the end, so the client adds no allocation
// and no lock of its own per request. See RATIONALE.md, "Why both closed-loop and
// fixed-rate modes, and which one to quote?" and the sections after it.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// BodyFunc appends the body of request number i (counting from 0, warm-up included) to
// dst and returns the extended slice. It is called from many goroutines at once, so it
// must be goroutine-safe; it should not allocate if it wants the client to stay
// allocation-free.
type BodyFunc func(i int, dst []byte) []byte

// CheckFunc validates a 2xx response; a non-nil error counts the request as a check
// error. body is only valid during the call. It is called from many goroutines at once,
// so it must be goroutine-safe.
type CheckFunc func(status int, body []byte) error

// Config describes one load run. The zero value is not usable: URL and Duration or
// Requests must be set.
type Config struct {
	// Name labels the run in reports.
	Name string
	// URL is the full target URL, for example "http://127.0.0.1:8090/v1/rank".
	URL string
	// Method is the HTTP method; empty means POST.
	Method string
	// ContentType is sent with every request; empty means application/json.
	ContentType string
	// Body generates each request body; nil sends an empty body.
	Body BodyFunc
	// Concurrency is the number of workers, each with at most one request (and one
	// connection) in flight. In closed-loop mode each sends its next request as soon as
	// the previous one completes. Zero means 1.
	Concurrency int
	// Rate, if positive, selects fixed-rate (open-loop) mode: requests are scheduled at
	// Rate per second regardless of responses and latency is measured from each request's
	// scheduled time, so time spent queued behind a slow response counts.
	Rate float64
	// MaxInFlight bounds, in fixed-rate mode, how many requests may be scheduled but not
	// yet completed (queued for a worker or being sent). A request scheduled while the
	// bound is reached is not sent and counts as Dropped. Zero means
	// max(Concurrency, Rate), about one second of backlog.
	MaxInFlight int
	// Duration is how long to measure after the warm-up. Zero means no time limit
	// (Requests must then be set).
	Duration time.Duration
	// Requests, if positive, stops the run after this many measured requests have been
	// started (closed loop) or scheduled (fixed rate), whichever of Duration and Requests
	// comes first.
	Requests int
	// Warmup is run before measuring; requests started (closed loop) or scheduled (fixed
	// rate) during it are not counted.
	Warmup time.Duration
	// Timeout bounds each request; zero means 10 s. A request that runs out counts as a
	// timeout error.
	Timeout time.Duration
	// DisableKeepAlive sends "Connection: close" so that every request opens a connection.
	DisableKeepAlive bool
	// Check, if set, validates every 2xx response.
	Check CheckFunc
}

// Mode names reported in Report.Mode.
const (
	ModeClosed = "closed"
	ModeOpen   = "fixed-rate"
)

// ErrConfig is returned (wrapped) by Run for an unusable Config.
var ErrConfig = errors.New("loadgen: invalid config")

// Run drives the load described by cfg and returns the report. It blocks until the run
// ends; cancelling ctx ends it early, in which case Run returns the report so far together
// with ctx.Err(). Run is goroutine-safe; concurrent runs share nothing.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	hc, err := newHostClient(&cfg)
	if err != nil {
		return nil, err
	}
	defer hc.CloseIdleConnections()

	r := &runner{cfg: &cfg, hc: hc}
	stopWatch := context.AfterFunc(ctx, func() { r.stop.Store(true) })
	defer stopWatch()

	r.start = time.Now()
	if cfg.Rate > 0 {
		r.runOpen(ctx)
	} else {
		r.runClosed()
	}
	rep := r.report()
	return rep, ctx.Err()
}

func (c *Config) normalize() error {
	if c.URL == "" {
		return fmt.Errorf("%w: URL is empty", ErrConfig)
	}
	if c.Duration <= 0 && c.Requests <= 0 {
		return fmt.Errorf("%w: set Duration or Requests", ErrConfig)
	}
	if c.Method == "" {
		c.Method = fasthttp.MethodPost
	}
	if c.ContentType == "" {
		c.ContentType = "application/json"
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 1
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Rate < 0 || c.Warmup < 0 || c.Duration < 0 || c.Requests < 0 || c.MaxInFlight < 0 {
		return fmt.Errorf("%w: negative Rate, Warmup, Duration, Requests or MaxInFlight", ErrConfig)
	}
	if c.Rate > 0 && c.MaxInFlight == 0 {
		c.MaxInFlight = max(c.Concurrency, int(c.Rate))
	}
	return nil
}

func newHostClient(c *Config) (*fasthttp.HostClient, error) {
	u, err := url.Parse(c.URL)
	if err != nil {
		return nil, fmt.Errorf("%w: cannot parse URL %q: %v", ErrConfig, c.URL, err)
	}
	var port string
	switch u.Scheme {
	case "http":
		port = "80"
	case "https":
		port = "443"
	default:
		return nil, fmt.Errorf("%w: URL %q: scheme must be http or https", ErrConfig, c.URL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%w: URL %q has no host", ErrConfig, c.URL)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(strings.Trim(u.Hostname(), "[]"), port)
	}
	return &fasthttp.HostClient{
		Addr:  addr,
		IsTLS: u.Scheme == "https",
		Name:  "podium-loadgen",
		// Each worker holds at most one connection; waiting instead of failing covers the
		// moment between a closed connection and its count being released.
		MaxConns:                  c.Concurrency,
		MaxConnWaitTimeout:        c.Timeout,
		MaxIdemponentCallAttempts: 1,
		ReadBufferSize:            16 << 10,
	}, nil
}

// runner holds the state shared by the workers of one Run.
type runner struct {
	cfg   *Config
	hc    *fasthttp.HostClient
	start time.Time
	stop  atomic.Bool
	seq   atomic.Int64 // body index of the next request, warm-up included
	ws    []*worker
	// scheduler-owned state (fixed-rate mode), read after the workers finish
	dropped  int64
	schedLag Histogram // when the scheduler handed a job over, minus its scheduled time
}

// since returns the monotonic time since the run started.
func (r *runner) since() time.Duration { return time.Since(r.start) }

// worker owns everything one goroutine touches per request.
type worker struct {
	r    *runner
	req  *fasthttp.Request
	resp *fasthttp.Response
	body []byte

	lat      Histogram
	lag      Histogram // fixed-rate mode: actual send time minus scheduled time
	requests int64
	errs     Errors
	last     time.Duration // completion time of the last measured request, since start
}

func (r *runner) newWorker() *worker {
	w := &worker{r: r, req: fasthttp.AcquireRequest(), resp: fasthttp.AcquireResponse(), body: make([]byte, 0, 512)}
	w.req.SetRequestURI(r.cfg.URL)
	w.req.Header.SetMethod(r.cfg.Method)
	w.req.Header.SetContentType(r.cfg.ContentType)
	if r.cfg.DisableKeepAlive {
		w.req.SetConnectionClose()
	}
	r.ws = append(r.ws, w)
	return w
}

func (w *worker) release() {
	fasthttp.ReleaseRequest(w.req)
	fasthttp.ReleaseResponse(w.resp)
	w.req, w.resp = nil, nil
}

// do sends request i and, if measured, records its outcome with latency measured from
// from (an offset since the run start: the send time in closed loop, the scheduled time
// in fixed-rate mode).
func (w *worker) do(i int, from time.Duration, measured bool) {
	cfg := w.r.cfg
	if cfg.Body != nil {
		w.body = cfg.Body(i, w.body[:0])
		w.req.SetBody(w.body)
	}
	err := w.r.hc.DoTimeout(w.req, w.resp, cfg.Timeout)
	done := w.r.since()
	if !measured {
		return
	}
	w.requests++
	w.last = done
	if err != nil {
		w.errs.addTransport(err)
		return
	}
	w.lat.Record(done - from)
	status := w.resp.StatusCode()
	if status < 200 || status > 299 {
		w.errs.addStatus(status, w.resp.Body())
		return
	}
	if cfg.Check != nil {
		if err := cfg.Check(status, w.resp.Body()); err != nil {
			w.errs.addCheck(err)
		}
	}
}

// runClosed runs Concurrency workers that each send back to back.
func (r *runner) runClosed() {
	cfg := r.cfg
	warm := cfg.Warmup
	end := time.Duration(-1)
	if cfg.Duration > 0 {
		end = warm + cfg.Duration
	}
	var measuredLeft atomic.Int64
	measuredLeft.Store(int64(cfg.Requests))

	var wg sync.WaitGroup
	for range cfg.Concurrency {
		w := r.newWorker()
		wg.Go(func() {
			defer w.release()
			for !r.stop.Load() {
				now := r.since()
				if end >= 0 && now >= end {
					return
				}
				measured := now >= warm
				if measured && cfg.Requests > 0 && measuredLeft.Add(-1) < 0 {
					return
				}
				w.do(int(r.seq.Add(1)-1), now, measured)
			}
		})
	}
	wg.Wait()
}

// job is one scheduled request in fixed-rate mode.
type job struct {
	i        int
	at       time.Duration // scheduled send time since the run start
	measured bool
}

// runOpen schedules requests at cfg.Rate on one goroutine and hands them to Concurrency
// workers through a channel; see Config.Rate and Config.MaxInFlight.
func (r *runner) runOpen(ctx context.Context) {
	cfg := r.cfg
	var inFlight atomic.Int64
	jobs := make(chan job, cfg.MaxInFlight)

	var wg sync.WaitGroup
	for range cfg.Concurrency {
		w := r.newWorker()
		wg.Go(func() {
			defer w.release()
			for j := range jobs {
				if j.measured {
					w.lag.Record(r.since() - j.at)
				}
				w.do(j.i, j.at, j.measured)
				inFlight.Add(-1)
			}
		})
	}
	wg.Go(func() {
		// The scheduler gets a thread of its own with precise sleeps; see sleepShort.
		lockPreciseThread() // never unlocked: the thread ends with this goroutine
		defer close(jobs)
		r.schedule(ctx, jobs, &inFlight)
	})
	wg.Wait()
}

// preciseSleepMax is the longest wait the scheduler sleeps with sleepShort; longer waits
// use a timer that cancellation can interrupt.
const preciseSleepMax = 2 * time.Millisecond

// schedule sends job k at k/Rate seconds after the start until the run ends, dropping it
// if MaxInFlight jobs are outstanding. A late scheduler sends the jobs that are due at
// once, each still carrying its own scheduled time.
func (r *runner) schedule(ctx context.Context, jobs chan<- job, inFlight *atomic.Int64) {
	cfg := r.cfg
	warm := cfg.Warmup
	end := time.Duration(-1)
	if cfg.Duration > 0 {
		end = warm + cfg.Duration
	}
	perReq := float64(time.Second) / cfg.Rate
	limit := int64(cfg.MaxInFlight)
	left := cfg.Requests
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for k := 0; ; k++ {
		at := time.Duration(float64(k) * perReq)
		if end >= 0 && at >= end {
			return
		}
		measured := at >= warm
		if measured && cfg.Requests > 0 {
			if left == 0 {
				return
			}
			left--
		}
		for {
			if r.stop.Load() {
				return
			}
			d := at - r.since()
			if d <= 0 {
				break
			}
			if d <= preciseSleepMax {
				sleepShort(d)
				continue
			}
			timer.Reset(d - preciseSleepMax/2)
			select {
			case <-timer.C:
			case <-ctx.Done():
			}
		}
		if measured {
			r.schedLag.Record(r.since() - at)
		}
		if inFlight.Load() >= limit {
			if measured {
				r.dropped++
			}
			continue
		}
		inFlight.Add(1)
		jobs <- job{i: k, at: at, measured: measured}
	}
}

// report merges the workers' results.
func (r *runner) report() *Report {
	cfg := r.cfg
	rep := &Report{
		Name:        cfg.Name,
		Mode:        ModeClosed,
		Concurrency: cfg.Concurrency,
		Hist:        new(Histogram),
	}
	var lag *Histogram
	if cfg.Rate > 0 {
		rep.Mode = ModeOpen
		rep.TargetRate = cfg.Rate
		rep.MaxInFlight = cfg.MaxInFlight
		lag = new(Histogram)
	}
	var last time.Duration
	for _, w := range r.ws {
		rep.Hist.Merge(&w.lat)
		if lag != nil {
			lag.Merge(&w.lag)
		}
		rep.Requests += w.requests
		rep.Errors.merge(&w.errs)
		last = max(last, w.last)
	}
	rep.Errors.Dropped = r.dropped
	if last > cfg.Warmup {
		rep.Elapsed = last - cfg.Warmup
		rep.RPS = float64(rep.Requests) / rep.Elapsed.Seconds()
	}
	rep.Latency = summarize(rep.Hist)
	if lag != nil {
		s, sched := summarize(lag), summarize(&r.schedLag)
		rep.SendLag, rep.SchedulerLag = &s, &sched
	}
	return rep
}
