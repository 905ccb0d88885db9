package engine

import (
	"context"
	"encoding/json"
	"fmt"
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
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				r, err := e.Rank(&RankRequest{UserID: fmt.Sprintf("u%d", i%100), K: 20})
				if err != nil {
					b.Fatal(err)
				}
				e.Release(r)
				i++
				if shadow {
					// Wait for the worker so that its CPU is inside the measurement.
					for len(lv.jobs) > 0 {
						time.Sleep(time.Microsecond)
					}
				}
			}
			if shadow {
				cs, _ := lv.Compare("rank")
				b.ReportMetric(float64(cs.Challengers[0].Shadow.Dropped), "dropped")
			}
		})
	}
}
