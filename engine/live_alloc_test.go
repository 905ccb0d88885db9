//go:build !race

package engine

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/podium-rank/podium/engine/registry"
)

// TestLiveRankAllocs proves the live request path (slot references, split choice, stage
// measurement) allocates nothing per request, for the champion and for a split
// challenger.
func TestLiveRankAllocs(t *testing.T) {
	e := smallEngine(t)
	lv := openLive(t, e, "", LiveConfig{})
	v1, v2 := push(t, lv, 1), push(t, lv, 2)
	activate(t, lv, v1, "")
	_, err := lv.SetStage(context.Background(), "rank", StageUpdate{Challengers: &[]registry.Challenger{
		{Name: "b", Variant: registry.Variant{Version: v2, Params: json.RawMessage(`{"sign":-1}`)}, Mode: registry.ModeSplit, Share: 0.5}}}, "test")
	must(t, err)
	seen := map[string]bool{}
	for _, user := range []string{"u1", "u2", "u3", "u4", "u5", "u6"} {
		req := RankRequest{UserID: user, K: 20}
		for range 3 {
			r, _ := e.Rank(&req)
			seen[r.Variant] = true
			e.Release(r)
		}
		allocs := testing.AllocsPerRun(200, func() {
			r, err := e.Rank(&req)
			if err != nil {
				t.Fatal(err)
			}
			e.Release(r)
		})
		if allocs != 0 {
			t.Errorf("Rank for %s allocates %.1f times per request", user, allocs)
		}
	}
	if !seen["champion"] || !seen["rank:b"] {
		t.Errorf("the users did not cover both variants: %v", seen)
	}
}
