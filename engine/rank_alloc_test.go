//go:build !race

package engine

import "testing"

// TestRankAllocs proves the engine's request path (resolve ids, query, ANN, popularity,
// pipeline, host guarantees) allocates nothing per request once its pools are warm.
func TestRankAllocs(t *testing.T) {
	e := smallEngine(t)
	reqs := []RankRequest{
		{UserID: "u3", K: 20},
		{K: 20},
		{UserID: "u5", K: 5, Exclude: []string{"i1", "i2"}},
	}
	for _, req := range reqs {
		for i := 0; i < 3; i++ { // warm the pools
			r, _ := e.Rank(&req)
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
			t.Errorf("Rank(%+v) allocates %.1f times per request", req, allocs)
		}
	}
}
