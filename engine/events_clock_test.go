package engine

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/podium-rank/podium/engine/events"
)

// TestReplayedHistoricalEvents: events replayed with their original (years old)
// timestamps still shape the next ranking, as they did live: co-visitation, the session
// vector and live popularity are read at the event clock, not decayed to nothing by today.
func TestReplayedHistoricalEvents(t *testing.T) {
	e := smallEngine(t)
	if err := e.OpenEvents("", events.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	base := time.Date(2015, 6, 1, 12, 0, 0, 0, time.UTC)
	var evs []string
	// Many sessions view i100 then i778: a strong co-visitation pair, in 2015.
	for s := 0; s < 20; s++ {
		ts := base.Add(time.Duration(s) * time.Minute)
		evs = append(evs,
			fmt.Sprintf(`{"type":"view","session_id":"old%d","item_id":"i100","ts":%q}`, s, ts.Format(time.RFC3339)),
			fmt.Sprintf(`{"type":"view","session_id":"old%d","item_id":"i778","ts":%q}`, s, ts.Add(30*time.Second).Format(time.RFC3339)))
	}
	// The session under test views i100, a minute after the others.
	evs = append(evs, fmt.Sprintf(`{"type":"view","session_id":"probe","item_id":"i100","ts":%q}`, base.Add(21*time.Minute).Format(time.RFC3339)))
	if res, err := e.Events().Ingest([]byte("["+strings.Join(evs, ",")+"]"), time.Now()); err != nil || res.Accepted != len(evs) {
		t.Fatalf("ingest: %+v %v", res, err)
	}
	r, err := e.Rank(&RankRequest{SessionID: "probe", K: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Release(r)
	for i := range r.List.IDs {
		if r.ItemID(i) == "i778" {
			return
		}
	}
	t.Fatalf("the item co-visited with i100 in 2015 is not in the top 10: %v", r.List.IDs)
}
