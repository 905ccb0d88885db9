package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/podium-rank/podium/engine/pipeline"
	"github.com/podium-rank/podium/engine/plugin"
	"github.com/podium-rank/podium/engine/registry"
	"github.com/podium-rank/podium/engine/registry/registrytest"
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func check(t testing.TB, cond bool, format string, args ...any) {
	t.Helper()
	if !cond {
		t.Fatalf(format, args...)
	}
}

// openLive opens live operations on a small engine with an in-memory registry (or dir).
func openLive(t testing.TB, e *Engine, dir string, cfg LiveConfig) *Live {
	t.Helper()
	cfg.RegistryDir = dir
	if cfg.CanaryInterval == 0 {
		cfg.CanaryInterval = -1
	}
	if cfg.Instances == 0 {
		cfg.Instances = 2
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ShadowMinIdle == 0 {
		cfg.ShadowMinIdle = -1 // tests run beside others: do not wait for an idle machine
	}
	lv, err := e.OpenLive(cfg)
	must(t, err)
	t.Cleanup(func() { lv.Close(); e.Close() })
	return lv
}

// push stores the n-th distinct version of the live test plugin and returns its version.
func push(t testing.TB, lv *Live, n int) string {
	t.Helper()
	p, _, err := lv.Push(context.Background(), registrytest.Version(t, registrytest.Live(t), n), "test")
	must(t, err)
	return p.Version
}

// rankOnce ranks for user and returns the rank stage's report, the request variant and
// the ids.
func rankOnce(t testing.TB, e *Engine, user string, ctx ...pipeline.ContextValue) (pipeline.StageReport, string, []uint32) {
	t.Helper()
	r, err := e.Rank(&RankRequest{UserID: user, K: 10, Context: ctx})
	must(t, err)
	defer e.Release(r)
	return r.Result.Stages[0], r.Variant, slices.Clone(r.List.IDs)
}

func activate(t testing.TB, lv *Live, version, params string) StageStatus {
	t.Helper()
	st, err := lv.SetStage(context.Background(), "rank", StageUpdate{Champion: &registry.Variant{Version: version, Params: json.RawMessage(params)}}, "test")
	must(t, err)
	return st
}

func TestLiveDefaultSeedAndActivateRollback(t *testing.T) {
	e := smallEngine(t)
	lv := openLive(t, e, "", LiveConfig{})
	rep, variant, native := rankOnce(t, e, "u3")
	check(t, rep.Plugin == "native/linear" && rep.Version == "native" && rep.Variant == "champion" && variant == "champion", "seeded: %+v %s", rep, variant)

	v1, v2 := push(t, lv, 1), push(t, lv, 2)
	st := activate(t, lv, v1[:10], "")
	check(t, st.Champion.Version == v1 && len(st.History) == 1 && st.History[0].Version == "native:linear", "after activate: %+v", st.Stage)
	rep, _, up := rankOnce(t, e, "u3")
	check(t, rep.Version == v1[:12] && rep.Plugin == "test/live" && !rep.FellBack, "v1 serves: %+v", rep)

	activate(t, lv, v2, `{"sign":-1}`)
	rep, _, down := rankOnce(t, e, "u3")
	check(t, rep.Version == v2[:12] && !rep.FellBack, "v2 serves: %+v", rep)
	check(t, !slices.Equal(up, down), "sign -1 did not change the order")

	st, err := lv.Rollback(context.Background(), "rank", "test")
	must(t, err)
	check(t, st.Champion.Version == v1, "rollback to v1: %+v", st.Champion)
	rep, _, again := rankOnce(t, e, "u3")
	check(t, rep.Version == v1[:12] && slices.Equal(again, up), "after rollback: %+v", rep)
	_, err = lv.Rollback(context.Background(), "rank", "test")
	must(t, err)
	rep, _, ids := rankOnce(t, e, "u3")
	check(t, rep.Version == "native" && slices.Equal(ids, native), "second rollback: %+v", rep)
	_, err = lv.Rollback(context.Background(), "rank", "test")
	check(t, errors.Is(err, registry.ErrConflict), "nothing to roll back to: %v", err)

	var actions []string
	for _, ev := range lv.Events(0) {
		actions = append(actions, ev.Action)
	}
	check(t, strings.Join(actions, ",") == "seed,push,push,activate,activate,rollback,rollback", "events %v", actions)
	// The rolled-back versions are idle; nothing else is held but what serves.
	lv.retiring.Wait()
	check(t, lv.Registry().Modules().Held == 0, "modules %+v", lv.Registry().Modules())
}

// TestLiveRefusesBadActivation: a champion that traps with its params, an unknown version,
// a plugin of the wrong kind: refused, nothing changes.
func TestLiveRefusesBadActivation(t *testing.T) {
	e := smallEngine(t)
	lv := openLive(t, e, "", LiveConfig{})
	v1 := push(t, lv, 1)
	activate(t, lv, v1, "")
	before, _ := lv.Stage("rank")
	for _, c := range []struct {
		u    StageUpdate
		want error
		msg  string
	}{
		{StageUpdate{Champion: &registry.Variant{Version: v1, Params: json.RawMessage(`{"trap":"always"}`)}}, registry.ErrInvalid, "smoke call"},
		{StageUpdate{Champion: &registry.Variant{Version: "abcdef0123"}}, registry.ErrNotFound, "push it first"},
		{StageUpdate{Champion: &registry.Variant{Version: v1, Params: json.RawMessage(`{"features":"x"}`)}}, registry.ErrInvalid, "features"},
		{StageUpdate{Kind: "rules", Champion: &registry.Variant{Version: v1}}, registry.ErrInvalid, "is a rank stage"},
		{StageUpdate{Challengers: &[]registry.Challenger{{Name: "b", Variant: registry.Variant{Version: v1}, Mode: "split", Share: 2}}}, registry.ErrInvalid, "share"},
		{StageUpdate{Champion: &registry.Variant{Version: v1, Params: json.RawMessage(`{"sign":-1}`)}, Revision: 99}, registry.ErrConflict, "revision"},
	} {
		_, err := lv.SetStage(context.Background(), "rank", c.u, "test")
		check(t, errors.Is(err, c.want) && strings.Contains(err.Error(), c.msg), "%+v: err %v, want %v %q", c.u, err, c.want, c.msg)
	}
	after, _ := lv.Stage("rank")
	check(t, after.Revision == before.Revision && after.Champion.Same(before.Champion), "a refused change changed the stage: %+v", after.Stage)
	rep, _, _ := rankOnce(t, e, "u1")
	check(t, rep.Version == v1[:12] && !rep.FellBack, "serving: %+v", rep)
}

// TestLiveHammer activates and rolls back while many goroutines rank (run it with -race):
// every request is served by exactly one known version and none falls back, and retired
// plugins are closed.
func TestLiveHammer(t *testing.T) {
	e := smallEngine(t)
	lv := openLive(t, e, "", LiveConfig{})
	vs := []string{push(t, lv, 1), push(t, lv, 2), push(t, lv, 3)}
	known := map[string]bool{"native": true}
	for _, v := range vs {
		known[v[:12]] = true
	}
	// The hammer is about swaps, not deadlines: under -race on a loaded CI machine one call
	// can take longer than the default 20ms, so give the stage room.
	dl := registry.Duration(5 * time.Second)
	_, err := lv.SetStage(context.Background(), "rank", StageUpdate{Champion: &registry.Variant{Version: vs[0]}, Deadline: &dl}, "test")
	must(t, err)
	stop := make(chan struct{})
	var served atomic.Int64
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				r, err := e.Rank(&RankRequest{UserID: fmt.Sprintf("u%d", (g*31+i)%100), K: 10})
				if err != nil {
					t.Error(err)
					return
				}
				s := r.Result.Stages[0]
				if s.FellBack || !known[s.Version] || len(r.List.IDs) != 10 {
					t.Errorf("request served by %+v with %d items", s, len(r.List.IDs))
				}
				e.Release(r)
				served.Add(1)
			}
		}()
	}
	swaps := 30
	if testing.Short() {
		swaps = 10
	}
	for i := range swaps {
		if i%3 == 2 {
			_, err := lv.Rollback(context.Background(), "rank", "test")
			must(t, err)
		} else {
			activate(t, lv, vs[i%len(vs)], fmt.Sprintf(`{"sign":%d}`, 1-2*(i%2)))
		}
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	check(t, served.Load() > int64(swaps), "only %d requests during %d swaps", served.Load(), swaps)
	lv.retiring.Wait()
	// Only the champion's variant is open: one plugin holding its module.
	check(t, lv.Registry().Modules().Held == 1, "modules after the hammer: %+v", lv.Registry().Modules())
}

func TestLiveSplitIsSticky(t *testing.T) {
	e := smallEngine(t)
	lv := openLive(t, e, "", LiveConfig{})
	v1, v2 := push(t, lv, 1), push(t, lv, 2)
	activate(t, lv, v1, "")
	_, err := lv.SetStage(context.Background(), "rank", StageUpdate{Challengers: &[]registry.Challenger{
		{Name: "b", Variant: registry.Variant{Version: v2}, Mode: registry.ModeSplit, Share: 0.3}}}, "test")
	must(t, err)
	toB := 0
	for u := range 100 {
		user := fmt.Sprintf("u%d", u)
		want := lv.SplitVariant("rank", user, "")
		for range 2 {
			rep, variant, _ := rankOnce(t, e, user)
			check(t, rep.Variant == want, "user %s served by %s, predicted %s", user, rep.Variant, want)
			if want == "b" {
				check(t, rep.Version == v2[:12] && variant == "rank:b", "split to b: %+v %s", rep, variant)
			} else {
				check(t, rep.Version == v1[:12] && variant == "champion", "champion: %+v %s", rep, variant)
			}
		}
		if want == "b" {
			toB++
		}
	}
	check(t, toB > 15 && toB < 45, "%d of 100 users split to a 30%% challenger", toB)
	// Anonymous requests split by session; with neither, the champion serves.
	r, err := e.Rank(&RankRequest{SessionID: "s1", K: 5})
	must(t, err)
	check(t, r.Result.Stages[0].Variant == lv.SplitVariant("rank", "", "s1"), "session split")
	e.Release(r)
	// Changing the salt reshuffles users; the same salt gives the same assignment.
	salt := "other"
	_, err = lv.SetStage(context.Background(), "rank", StageUpdate{Salt: &salt}, "test")
	must(t, err)
	moved := 0
	for u := range 100 {
		if lv.SplitVariant("rank", fmt.Sprintf("u%d", u), "") == "b" != (splitHash("rank", fmt.Sprintf("u%d", u)) < threshold(0.3)) {
			moved++
		}
	}
	check(t, moved > 10, "a new salt moved only %d users", moved)
}

// waitShadow waits until want requests were sampled for every shadow challenger and all
// of them were compared or dropped.
func waitShadow(t testing.TB, lv *Live, stage string, want uint64) CompareStatus {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		cs, err := lv.Compare(stage)
		must(t, err)
		done := true
		for _, c := range cs.Challengers {
			if s := c.Shadow; s != nil && (s.Sampled < want || s.Compared+s.Dropped < s.Sampled) {
				done = false
			}
		}
		if done || time.Now().After(deadline) {
			return cs
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLiveShadowCompares(t *testing.T) {
	e := smallEngine(t)
	lv := openLive(t, e, "", LiveConfig{})
	v1, v2, v3 := push(t, lv, 1), push(t, lv, 2), push(t, lv, 3)
	activate(t, lv, v1, "")
	_, err := lv.SetStage(context.Background(), "rank", StageUpdate{Challengers: &[]registry.Challenger{
		{Name: "same", Variant: registry.Variant{Version: v2}, Mode: registry.ModeShadow, Share: 1},
		{Name: "reversed", Variant: registry.Variant{Version: v3, Params: json.RawMessage(`{"sign":-1}`)}, Mode: registry.ModeShadow, Share: 1},
	}}, "test")
	must(t, err)
	const n = 40
	for i := range n {
		rep, variant, _ := rankOnce(t, e, fmt.Sprintf("u%d", i))
		check(t, rep.Version == v1[:12] && rep.Variant == "champion" && variant == "champion", "shadows must not serve: %+v", rep)
		time.Sleep(200 * time.Microsecond) // let the worker keep up: this test is not about drops
	}
	cs := waitShadow(t, lv, "rank", n)
	check(t, len(cs.Challengers) == 2, "challengers %+v", cs.Challengers)
	for _, c := range cs.Challengers {
		s := c.Shadow
		check(t, s != nil && s.Sampled == n && s.Compared+s.Dropped == n && s.Compared > 0, "%s: %+v", c.Variant, s)
		check(t, s.Challenger.Runs == s.Compared && s.Challenger.Faults == 0, "%s: challenger %+v", c.Variant, s.Challenger)
		switch c.Variant {
		case "same":
			check(t, s.OverlapAtK == 1 && s.KendallTau == 1 && s.MeanAbsScoreDelta == 0, "same code: %+v", s)
		case "reversed":
			check(t, s.OverlapAtK < 0.5 && s.KendallTau < -0.5 && s.MeanAbsScoreDelta > 0, "reversed: %+v", s)
		}
	}
	m := string(lv.AppendMetrics(nil))
	check(t, strings.Contains(m, `podium_live_shadow_compared_total{stage="rank",variant="reversed"`) &&
		strings.Contains(m, `podium_live_stage_runs_total{stage="rank",variant="champion",version="`+v1[:12]+`"}`), "metrics:\n%s", m)
	// Removing the challengers keeps the champion running: it is not restarted.
	pl := lv.findSlot("rank").cur.Load().champion.pl
	_, err = lv.SetStage(context.Background(), "rank", StageUpdate{Challengers: &[]registry.Challenger{}}, "test")
	must(t, err)
	check(t, lv.findSlot("rank").cur.Load().champion.pl == pl, "the champion was restarted by a challenger change")
}

// TestLiveShadowDropsWhenFull: a slow shadow with a queue of 1 drops work and counts it;
// the primary keeps serving the champion.
func TestLiveShadowDropsWhenFull(t *testing.T) {
	e := smallEngine(t)
	lv := openLive(t, e, "", LiveConfig{ShadowQueue: 1})
	v1, v2 := push(t, lv, 1), push(t, lv, 2)
	activate(t, lv, v1, "")
	_, err := lv.SetStage(context.Background(), "rank", StageUpdate{Challengers: &[]registry.Challenger{
		{Name: "slow", Variant: registry.Variant{Version: v2, Params: json.RawMessage(`{"slow":true}`)}, Mode: registry.ModeShadow, Share: 1}}}, "test")
	must(t, err)
	for i := range 50 {
		rep, _, _ := rankOnce(t, e, fmt.Sprintf("u%d", i))
		check(t, rep.Version == v1[:12] && !rep.FellBack, "primary %+v", rep)
	}
	cs, _ := lv.Compare("rank")
	s := cs.Challengers[0].Shadow
	check(t, s.Sampled == 50 && s.Dropped > 0 && cs.ShadowQueue.Dropped >= s.Dropped, "no drops counted: %+v queue %+v", s, cs.ShadowQueue)
}

// TestLiveCanaryRollsBack: a split challenger that traps on real traffic (but passes the
// smoke call) is rolled back by its canary; the rollback is in the events.
func TestLiveCanaryRollsBack(t *testing.T) {
	e := smallEngine(t)
	lv := openLive(t, e, "", LiveConfig{})
	v1, v2 := push(t, lv, 1), push(t, lv, 2)
	activate(t, lv, v1, "")
	_, err := lv.SetStage(context.Background(), "rank", StageUpdate{Challengers: &[]registry.Challenger{
		{Name: "bad", Variant: registry.Variant{Version: v2, Params: json.RawMessage(`{"trap":"ctx"}`)}, Mode: registry.ModeSplit, Share: 1,
			Canary: &registry.Canary{MinRequests: 20, MaxErrorRate: 0.1}}}}, "test")
	must(t, err)
	trap := pipeline.ContextValue{Key: "behave", Str: "trap"}
	check(t, len(lv.CheckCanaries(time.Now())) == 0, "rolled back before any traffic")
	for i := range 30 {
		rep, variant, _ := rankOnce(t, e, fmt.Sprintf("u%d", i), trap)
		check(t, rep.Variant == "bad" && variant == "rank:bad" && rep.FellBack, "the split challenger should serve and fall back: %+v", rep)
	}
	got := lv.CheckCanaries(time.Now())
	check(t, len(got) == 1 && strings.HasPrefix(got[0], "rank:bad: fault rate 1.000 > 0.100"), "verdicts %v", got)
	rep, variant, _ := rankOnce(t, e, "u1", trap)
	check(t, rep.Variant == "champion" && variant == "champion" && rep.Version == v1[:12] && !rep.FellBack, "after the rollback: %+v", rep)
	evs := lv.Events(1)
	check(t, evs[0].Action == registry.ActionCanaryRollback && evs[0].Version == v2 && strings.Contains(evs[0].Detail, "fault rate"), "event %+v", evs[0])
	st, _ := lv.Stage("rank")
	check(t, len(st.Challengers) == 0 && st.Champion.Version == v1, "stage %+v", st.Stage)

	// A latency canary: a slow challenger crosses max_p99.
	_, err = lv.SetStage(context.Background(), "rank", StageUpdate{Challengers: &[]registry.Challenger{
		{Name: "slow", Variant: registry.Variant{Version: v2, Params: json.RawMessage(`{"slow":true}`)}, Mode: registry.ModeSplit, Share: 1,
			Canary: &registry.Canary{MinRequests: 5, MaxP99: registry.Duration(200 * time.Microsecond)}}}}, "test")
	must(t, err)
	for i := range 6 {
		rankOnce(t, e, fmt.Sprintf("u%d", i))
	}
	got = lv.CheckCanaries(time.Now())
	check(t, len(got) == 1 && strings.Contains(got[0], "rank:slow: p99"), "verdicts %v", got)
}

// TestLiveRestartRestores: a registry directory brings back the same pipeline after a
// restart: champion, params, challengers, settings and history.
func TestLiveRestartRestores(t *testing.T) {
	dir := t.TempDir()
	e := smallEngine(t)
	lv, err := e.OpenLive(LiveConfig{RegistryDir: dir, CanaryInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	must(t, err)
	v1, v2 := push(t, lv, 1), push(t, lv, 2)
	activate(t, lv, v1, "")
	cut := 50
	_, err = lv.SetStage(context.Background(), "rank", StageUpdate{
		Champion:    &registry.Variant{Version: v2, Params: json.RawMessage(`{"sign":-1}`)},
		Challengers: &[]registry.Challenger{{Name: "b", Variant: registry.Variant{Version: v1}, Mode: registry.ModeSplit, Share: 0.5}},
		Cut:         &cut}, "test")
	must(t, err)
	want, _ := lv.Stage("rank")
	var before [][]uint32
	var reps []pipeline.StageReport
	for u := range 20 {
		rep, _, ids := rankOnce(t, e, fmt.Sprintf("u%d", u))
		before, reps = append(before, ids), append(reps, rep)
	}
	must(t, lv.Close())
	must(t, e.Close())

	e2 := smallEngine(t)
	lv2 := openLive(t, e2, dir, LiveConfig{})
	got, err := lv2.Stage("rank")
	must(t, err)
	check(t, got.Revision == want.Revision && got.Champion.Same(want.Champion) && got.Cut == 50 && len(got.History) == 2, "restored %+v, want %+v", got.Stage, want.Stage)
	check(t, len(got.Challengers) == 1 && got.Challengers[0].Name == "b" && got.Challengers[0].Share == 0.5, "challengers %+v", got.Challengers)
	for u := range 20 {
		rep, _, ids := rankOnce(t, e2, fmt.Sprintf("u%d", u))
		check(t, rep.Version == reps[u].Version && rep.Variant == reps[u].Variant && slices.Equal(ids, before[u]),
			"user u%d: %+v %v, before %+v %v", u, rep, ids, reps[u], before[u])
	}
}

// TestLiveSeedsFromPipelineFile: the --pipeline config seeds the registry (its plugins are
// pushed and become champions); restarting with the same file keeps the changes made
// since, and a changed file replaces the stages, the old champions going to the history.
func TestLiveSeedsFromPipelineFile(t *testing.T) {
	dir, reg := t.TempDir(), t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "live.wasm"), registrytest.Live(t), 0o644))
	file := filepath.Join(dir, "pipeline.json")
	writeSeed := func(params string) {
		must(t, os.WriteFile(file, []byte(`{"stages":[
	  {"name":"rank","kind":"rank","plugin":"live.wasm","params":`+params+`,"deadline":"30ms","cut":100},
	  {"name":"diversity","kind":"diversity","plugin":"native:by-retrieval"}]}`), 0o644))
	}
	start := func() (*Engine, *Live) {
		e := smallEngine(t)
		lv, err := e.OpenLive(LiveConfig{RegistryDir: reg, SeedFile: file, CanaryInterval: -1, Logger: slog.New(slog.DiscardHandler)})
		must(t, err)
		return e, lv
	}
	stop := func(e *Engine, lv *Live) { must(t, lv.Close()); must(t, e.Close()) }
	writeSeed(`{"sign":-1}`)
	e, lv := start()
	sts := lv.Stages()
	seeded := plugin.Version(registrytest.Live(t))
	check(t, len(sts) == 2 && sts[0].Champion.Version == seeded && sts[0].Cut == 100 &&
		time.Duration(sts[0].Deadline) == 30*time.Millisecond && sts[1].Champion.Version == "native:by-retrieval", "seeded %+v", sts)
	r, err := e.Rank(&RankRequest{UserID: "u2", K: 5})
	must(t, err)
	check(t, len(r.Result.Stages) == 2 && r.Result.Stages[0].Plugin == "test/live" && r.Result.Stages[1].Name == "diversity", "stages %+v", r.Result.Stages)
	e.Release(r)
	v2 := push(t, lv, 2)
	activate(t, lv, v2, "")
	stop(e, lv)

	e, lv = start() // same file: the activation survives
	st, _ := lv.Stage("rank")
	check(t, st.Champion.Version == v2 && len(st.History) == 1, "same seed: %+v", st.Stage)
	stop(e, lv)

	writeSeed(`{"sign":1}`) // changed file: it wins, v2 goes to the history
	e, lv = start()
	st, _ = lv.Stage("rank")
	check(t, st.Champion.Version == seeded && string(st.Champion.Params) == `{"sign":1}` && len(st.History) == 2 && st.History[1].Version == v2, "changed seed: %+v", st.Stage)
	_, err = lv.Rollback(context.Background(), "rank", "test")
	must(t, err)
	st, _ = lv.Stage("rank")
	check(t, st.Champion.Version == v2, "rollback after a re-seed: %+v", st.Champion)
	stop(e, lv)

	// --pipeline native: the default blend replaces the seeded stages; without any seed
	// the registry is kept.
	e = smallEngine(t)
	lv, err = e.OpenLive(LiveConfig{RegistryDir: reg, CanaryInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	must(t, err)
	check(t, len(lv.Stages()) == 2, "no seed keeps the registry: %+v", lv.Stages())
	must(t, e.Close()) // closes live operations too
	e = smallEngine(t)
	lv, err = e.OpenLive(LiveConfig{RegistryDir: reg, SeedNative: true, CanaryInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	must(t, err)
	sts = lv.Stages()
	check(t, len(sts) == 1 && sts[0].Champion.Version == "native:linear" && sts[0].History[len(sts[0].History)-1].Version == v2,
		"native seed: %+v", sts)
	rep, _, _ := rankOnce(t, e, "u1")
	check(t, rep.Version == "native", "serving %+v", rep)
	stop(e, lv)
}

// TestLiveMemoryAfterSwaps: 200 swaps back and forth leave the heap where it was after
// the first 20, and only the champion's module held.
func TestLiveMemoryAfterSwaps(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	e := smallEngine(t)
	lv := openLive(t, e, "", LiveConfig{})
	vs := []string{push(t, lv, 1), push(t, lv, 2)}
	swap := func(n int) {
		for i := range n {
			activate(t, lv, vs[i%2], "")
			rankOnce(t, e, "u1")
		}
		lv.retiring.Wait()
	}
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	swap(20)
	before := heap()
	swap(200)
	after := heap()
	t.Logf("heap in use after 20 swaps %.1f MiB, after 220 %.1f MiB", float64(before)/(1<<20), float64(after)/(1<<20))
	check(t, after < before+4<<20, "heap grew from %d to %d bytes over 200 swaps", before, after)
	check(t, lv.Registry().Modules().Held == 1, "modules %+v", lv.Registry().Modules())
}

func TestIdleGate(t *testing.T) {
	if _, total, broken := readCPU(); broken || total == 0 {
		t.Skip("no /proc/stat")
	}
	off := newIdleGate(-1)
	check(t, off.open(time.Now()) && off.open(time.Now().Add(time.Hour)), "a disabled gate closed")
	never := newIdleGate(1.01) // more idle than there can be
	check(t, never.open(time.Now()), "the gate starts open")
	time.Sleep(idleWindow + 20*time.Millisecond)
	check(t, !never.open(time.Now()), "a gate asking for 101%% idle opened")
}
