package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/podium-rank/podium/engine/registry"
	"github.com/podium-rank/podium/engine/registry/registrytest"
)

// BenchmarkLiveRank measures Rank through the live pipeline with the reference linear
// plugin as champion: alone, and with a shadow challenger sampling every request (the
// shadow work runs on the worker, so its cost shows as CPU taken from the requests).
func BenchmarkLiveRank(b *testing.B) {
	lin := registrytest.Build(b, "plugins/rank/linear/c")
	for _, shadow := range []bool{false, true} {
		name := "champion"
		if shadow {
			name = "shadow100"
		}
		b.Run(name, func(b *testing.B) {
			e := smallEngine(b)
			lv := openLive(b, e, "", LiveConfig{})
			p1, _, err := lv.Push(context.Background(), registrytest.Version(b, lin, 1), "b")
			must(b, err)
			p2, _, err := lv.Push(context.Background(), registrytest.Version(b, lin, 2), "b")
			must(b, err)
			activate(b, lv, p1.Version, "")
			if shadow {
				_, err := lv.SetStage(context.Background(), "rank", StageUpdate{Challengers: &[]registry.Challenger{
					{Name: "s", Variant: registry.Variant{Version: p2.Version, Params: json.RawMessage(`{"weights":{"popularity":1}}`)}, Mode: registry.ModeShadow, Share: 1}}}, "b")
				must(b, err)
			}
			users := make([]string, 100)
			for i := range users {
				users[i] = fmt.Sprintf("u%d", i)
			}
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			var n atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				req := RankRequest{K: 20}
				for i := 0; pb.Next(); i++ {
					req.UserID = users[i%len(users)]
					r, err := e.Rank(&req)
					if err != nil {
						b.Error(err)
						return
					}
					e.Release(r)
					n.Add(1)
				}
			})
			b.StopTimer()
			time.Sleep(20 * time.Millisecond) // let the worker finish its batch
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Microsecond)/float64(n.Load()), "cpu-µs/op")
			if shadow {
				cs, _ := lv.Compare("rank")
				s := cs.Challengers[0].Shadow
				b.ReportMetric(float64(s.Compared)/float64(s.Sampled), "compared/sampled")
			}
		})
	}
}

// cpuTime returns the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkShadowHandOff measures what a sampled request pays on the request path to hand
// its shadow work over: the copy of the stage's input (220 candidates and the request's
// environment) and the queue hand-over; the job is then taken back, not run.
func BenchmarkShadowHandOff(b *testing.B) {
	e := smallEngine(b)
	lv := openLive(b, e, "", LiveConfig{ShadowQueue: 1 << 20, ShadowCPU: 1e-9})
	r, err := e.Rank(&RankRequest{UserID: "u1", K: 20})
	must(b, err)
	env, l := &r.env, &r.List
	// Rebuild a candidate list of the size a request ranks.
	for l.Len() < 220 {
		l.Add(uint32(l.Len()), 0.5, 0)
	}
	a := lv.tmpl.Load().slots[0].acquire()
	b.ReportAllocs()
	for b.Loop() {
		j := lv.snapshot(env, l, a, 0)
		lv.putJob(j) // releases the job's reference, as the worker would
	}
	a.release()
	e.Release(r)
}
