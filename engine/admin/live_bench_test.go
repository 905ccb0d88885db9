package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/podium-rank/podium/bench/loadgen"
	"github.com/podium-rank/podium/engine"
	"github.com/podium-rank/podium/engine/admin/admintest"
	"github.com/podium-rank/podium/engine/admin/client"
	"github.com/podium-rank/podium/engine/registry"
	"github.com/podium-rank/podium/engine/registry/registrytest"
)

// The measurements of live operations under load. Without PODIUM_BENCH=1 they run short
// (a couple of seconds) and check only correctness: zero non-2xx answers and every
// response naming a version that was live. With PODIUM_BENCH=1 they run the full
// measurements of /tmp/podium-notes/liveops-bench.md and log the figures; timings are
// never asserted.

func long() bool { return os.Getenv("PODIUM_BENCH") == "1" }

// linearWasm returns the reference rank/linear plugin (C build).
func linearWasm(t testing.TB) []byte { return registrytest.Build(t, "plugins/rank/linear/c") }

// versionChecker validates /v1/rank answers: the rank stage names one of the allowed
// versions and did not fall back. It records when each version was first seen.
type versionChecker struct {
	allowed map[string]bool
	probe   atomic.Pointer[swapProbe]
	bad     atomic.Int64
	sample  atomic.Pointer[string]
}

type swapProbe struct {
	want string
	t0   time.Time
	seen atomic.Int64 // unix ns of the first response naming want
}

var errVersion = errors.New("response does not name a live version, or fell back")

func (c *versionChecker) check(status int, body []byte) error {
	i := bytes.Index(body, []byte(`"version":"`))
	if i < 0 || len(body) < i+11+12 {
		c.fail(body)
		return errVersion
	}
	v := string(body[i+11 : i+11+12])
	if !c.allowed[v] || !bytes.Contains(body, []byte(`"fell_back":false`)) {
		c.fail(body)
		return errVersion
	}
	if p := c.probe.Load(); p != nil && p.want == v && p.seen.Load() == 0 {
		p.seen.CompareAndSwap(0, time.Now().UnixNano())
	}
	return nil
}

func (c *versionChecker) fail(body []byte) {
	c.bad.Add(1)
	s := string(body)
	c.sample.CompareAndSwap(nil, &s)
}

func benchEnv(t *testing.T, cfg engine.LiveConfig) *admintest.Env {
	if long() {
		return admintest.StartWith(t, cfg, admintest.Options{Items: 20000, Users: 2000, Dim: 32})
	}
	return admintest.Start(t, cfg)
}

func loadConfig(env *admintest.Env, users int, d time.Duration, check loadgen.CheckFunc) loadgen.Config {
	body, _ := loadgen.TemplateBody([]byte(`{"user_id":"{{user}}","k":20}`), users)
	return loadgen.Config{URL: env.PublicURL + "/v1/rank", Concurrency: 4, Duration: d, Warmup: 200 * time.Millisecond, Body: body, Check: check}
}

// TestSwapsUnderLoad: closed-loop load while activating two versions back and forth and
// pushing a version that traps (refused at upload). Zero non-2xx, every response names a
// live version; with PODIUM_BENCH=1, 30 s of steady load then 30 s with 50 swaps, and the
// p99 ratio.
func TestSwapsUnderLoad(t *testing.T) {
	d, swaps := 2*time.Second, 10
	if long() {
		d, swaps = 30*time.Second, 50
	} else if testing.Short() {
		d, swaps = time.Second, 4
	}
	env := benchEnv(t, engine.LiveConfig{})
	c := &client.Client{URL: env.AdminURL, Token: admintest.Token, Caller: "bench"}
	ctx := context.Background()
	lin := linearWasm(t)
	var vs []string
	for i, w := range [][]byte{registrytest.Version(t, lin, 1), registrytest.Version(t, lin, 2)} {
		p, err := c.Push(ctx, w)
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, p.Version)
		_ = i
	}
	params := []json.RawMessage{json.RawMessage(`{"weights":{"retrieval_score":1,"popularity":0.1}}`), json.RawMessage(`{"weights":{"retrieval_score":1,"popularity":0.5}}`)}
	if _, err := c.Activate(ctx, "rank", vs[0], params[0]); err != nil {
		t.Fatal(err)
	}
	chk := &versionChecker{allowed: map[string]bool{vs[0][:12]: true, vs[1][:12]: true}}
	users := 100
	if long() {
		users = 2000
	}

	var steady *loadgen.Report
	if long() {
		var err error
		steady, err = loadgen.Run(ctx, loadConfig(env, users, d, chk.check))
		if err != nil {
			t.Fatal(err)
		}
	}
	var swapTimes, callTimes []time.Duration
	var trapErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(300 * time.Millisecond) // the warm-up
		gap := d / time.Duration(swaps+1)
		for i := range swaps {
			time.Sleep(gap)
			next := (i + 1) % 2
			p := &swapProbe{want: vs[next][:12], t0: time.Now()}
			chk.probe.Store(p)
			if _, err := c.Activate(ctx, "rank", vs[next], params[next]); err != nil {
				t.Error(err)
				return
			}
			callTimes = append(callTimes, time.Since(p.t0))
			if i == swaps/2 {
				_, trapErr = c.Push(ctx, registrytest.WithParams(t, registrytest.Live(t), `{"trap":"always"}`))
			}
			for w := 0; w < 2000 && p.seen.Load() == 0; w++ {
				time.Sleep(100 * time.Microsecond)
			}
			if s := p.seen.Load(); s > 0 {
				swapTimes = append(swapTimes, time.Unix(0, s).Sub(p.t0))
			}
		}
	}()
	during, err := loadgen.Run(ctx, loadConfig(env, users, d, chk.check))
	if err != nil {
		t.Fatal(err)
	}
	<-done
	var ae *client.Error
	if !errors.As(trapErr, &ae) || ae.Code != "invalid_plugin" || !strings.Contains(ae.Message, "smoke call") {
		t.Errorf("the trapping push was not refused: %v", trapErr)
	}
	if n := during.Errors.Total(); n != 0 || chk.bad.Load() != 0 {
		sample := ""
		if s := chk.sample.Load(); s != nil {
			sample = *s
		}
		t.Fatalf("%d errors during swaps (%v), %d bad bodies, e.g. %s", n, during.Errors.String(), chk.bad.Load(), sample)
	}
	if steady != nil && steady.Errors.Total() != 0 {
		t.Fatalf("steady errors: %v", steady.Errors.String())
	}
	if len(callTimes) != swaps {
		t.Fatalf("%d of %d swaps done", len(callTimes), swaps)
	}
	slices.Sort(swapTimes)
	slices.Sort(callTimes)
	q := func(xs []time.Duration, p float64) time.Duration {
		if len(xs) == 0 {
			return 0
		}
		return xs[min(len(xs)-1, int(p*float64(len(xs))))]
	}
	t.Logf("swaps under load: %d swaps in %v, %d requests, 0 non-2xx, every response named %s or %s", swaps, d, during.Requests, vs[0][:12], vs[1][:12])
	t.Logf("activate call: p50 %v max %v; activate -> first response from the new version: p50 %v p90 %v max %v (%d observed)",
		q(callTimes, 0.5), q(callTimes, 1), q(swapTimes, 0.5), q(swapTimes, 0.9), q(swapTimes, 1), len(swapTimes))
	t.Logf("during swaps: %s", during.String())
	if steady != nil {
		t.Logf("steady:       %s", steady.String())
		t.Logf("swaps/steady: %s", loadgen.Ratio(during, steady).String())
	}
}

// TestShadowCost: the primary's p99 at half of its maximum throughput (fixed rate) with a
// shadow challenger at 100% sampling against without, in alternating rounds; dropped
// shadow work is counted. PODIUM_BENCH=1 only.
func TestShadowCost(t *testing.T) {
	if !long() {
		t.Skip("set PODIUM_BENCH=1")
	}
	env := benchEnv(t, engine.LiveConfig{})
	c := &client.Client{URL: env.AdminURL, Token: admintest.Token, Caller: "bench"}
	ctx := context.Background()
	lin := linearWasm(t)
	p1, err := c.Push(ctx, registrytest.Version(t, lin, 1))
	if err != nil {
		t.Fatal(err)
	}
	p2, err := c.Push(ctx, registrytest.Version(t, lin, 2))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Activate(ctx, "rank", p1.Version, nil); err != nil {
		t.Fatal(err)
	}
	chk := &versionChecker{allowed: map[string]bool{p1.Version[:12]: true}}
	cfg := loadConfig(env, 2000, 5*time.Second, chk.check)
	maxRep, err := loadgen.Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	frac := 0.5
	if f, err := strconv.ParseFloat(os.Getenv("PODIUM_BENCH_FRACTION"), 64); err == nil && f > 0 {
		frac = f // e.g. 0.25 to measure further from saturation
	}
	rate := maxRep.RPS * frac
	t.Logf("max throughput (closed loop, c=4): %s", maxRep.String())
	shadow := []registry.Challenger{{Name: "shadow", Variant: registry.Variant{Version: p2.Version, Params: json.RawMessage(`{"weights":{"retrieval_score":1,"popularity":0.5}}`)}, Mode: registry.ModeShadow, Share: 1}}
	none := []registry.Challenger{}
	var ratios []float64
	var totalWith, totalWithout loadgen.Histogram
	// Many short rounds in ABBA order, so that the drift of the other load on this shared
	// machine hits both sides alike; the median of the per-round ratios is the figure.
	// PODIUM_BENCH_AA=1 runs the same rounds without a shadow on either side: the ratios
	// then show the noise floor of this machine.
	aa := os.Getenv("PODIUM_BENCH_AA") == "1"
	if aa {
		t.Log("A/A control: no shadow on either side")
	}
	const rounds = 12
	var dropped, sampled, compared uint64
	for round := range rounds {
		var reps [2]*loadgen.Report
		order := []int{0, 1}
		if round%2 == 1 {
			order = []int{1, 0}
		}
		for _, i := range order {
			// Remove the shadow first so that each run starts a fresh comparison.
			if _, err := c.SetStage(ctx, "rank", engine.StageUpdate{Challengers: &none}); err != nil {
				t.Fatal(err)
			}
			if i == 1 && !aa {
				if _, err := c.SetStage(ctx, "rank", engine.StageUpdate{Challengers: &shadow}); err != nil {
					t.Fatal(err)
				}
			}
			fc := cfg
			fc.Rate, fc.Duration, fc.Warmup, fc.Concurrency, fc.Name = rate, 2*time.Second, 300*time.Millisecond, 8, []string{"without", "with shadow"}[i]
			rep, err := loadgen.Run(ctx, fc)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Errors.Total() != 0 {
				t.Fatalf("errors: %s", rep.Errors.String())
			}
			reps[i] = rep
			if i == 1 && !aa {
				cmp, err := c.Compare(ctx, "rank")
				if err != nil {
					t.Fatal(err)
				}
				s := cmp.Challengers[0].Shadow
				sampled, compared, dropped = sampled+s.Sampled, compared+s.Compared, dropped+s.Dropped
			}
		}
		r := loadgen.Ratio(reps[1], reps[0])
		ratios = append(ratios, r.P99)
		totalWithout.Merge(reps[0].Hist)
		totalWith.Merge(reps[1].Hist)
		t.Logf("round %2d at %.0f req/s: p99 without %v, with %v: %s", round, rate, reps[0].Latency.P99, reps[1].Latency.P99, r.String())
	}
	if !aa {
		t.Logf("shadow work: sampled %d, compared %d (%.1f%%), dropped %d (%.1f%%)", sampled, compared, 100*float64(compared)/float64(sampled), dropped, 100*float64(dropped)/float64(sampled))
	}
	slices.Sort(ratios)
	t.Logf("shadow/none p99 ratios per round %.2f (median %.2f); pooled p99 %v vs %v = %.2f", ratios, (ratios[rounds/2-1]+ratios[rounds/2])/2,
		totalWith.Quantile(0.99), totalWithout.Quantile(0.99), float64(totalWith.Quantile(0.99))/float64(totalWithout.Quantile(0.99)))
}

func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// TestSwapMemory: 1000 swaps through the admin API (PODIUM_BENCH=1; 50 otherwise) with a
// request after each; heap and RSS after against after the first 20.
func TestSwapMemory(t *testing.T) {
	n := 50
	if long() {
		n = 1000
	} else if testing.Short() {
		t.Skip("-short")
	}
	env := benchEnv(t, engine.LiveConfig{})
	c := &client.Client{URL: env.AdminURL, Token: admintest.Token, Caller: "bench"}
	ctx := context.Background()
	lin := linearWasm(t)
	var vs []string
	for i := range 2 {
		p, err := c.Push(ctx, registrytest.Version(t, lin, i))
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, p.Version)
	}
	var wg sync.WaitGroup
	swap := func(k int) []time.Duration {
		var took []time.Duration
		for i := range k {
			t0 := time.Now()
			if _, err := c.Activate(ctx, "rank", vs[i%2], nil); err != nil {
				t.Fatal(err)
			}
			took = append(took, time.Since(t0))
			if !strings.Contains(env.Rank(t, "u1"), vs[i%2][:12]) {
				t.Fatalf("swap %d: not served by %s", i, vs[i%2][:12])
			}
		}
		wg.Wait()
		return took
	}
	mem := func() (heap, sys uint64, r int64) {
		var m runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapInuse, m.Sys, rss()
	}
	swap(20)
	time.Sleep(100 * time.Millisecond) // retirements run in the background
	h0, s0, r0 := mem()
	took := swap(n)
	time.Sleep(100 * time.Millisecond)
	h1, s1, r1 := mem()
	slices.Sort(took)
	mib := func(x float64) string { return fmt.Sprintf("%.1f MiB", x/(1<<20)) }
	t.Logf("%d swaps: activate call p50 %v p99 %v max %v", n, took[n/2], took[n*99/100], took[n-1])
	t.Logf("heap in use %s -> %s (%.3fx), Go sys %s -> %s, RSS %s -> %s (%.3fx); modules %+v",
		mib(float64(h0)), mib(float64(h1)), float64(h1)/float64(h0), mib(float64(s0)), mib(float64(s1)), mib(float64(r0)), mib(float64(r1)), float64(r1)/float64(r0),
		env.Live.Registry().Modules())
	if h1 > h0+8<<20 {
		t.Errorf("heap grew from %s to %s over %d swaps", mib(float64(h0)), mib(float64(h1)), n)
	}
	if m := env.Live.Registry().Modules(); m.Held != 1 {
		t.Errorf("modules after the swaps: %+v", m)
	}
}
