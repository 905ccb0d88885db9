package events_test

import (
	"fmt"
	"time"

	"github.com/podium-rank/podium/engine/catalog"
	"github.com/podium-rank/podium/engine/events"
)

// The HTTP handler of POST /v1/events calls Ingest; the rank path then reads the state.
func Example() {
	cat := catalog.New(catalog.Config{Dim: 2})
	for _, it := range []catalog.Item{
		{ID: "shoe", Embedding: []float32{1, 0}, InStock: true},
		{ID: "sock", Embedding: []float32{0, 1}, InStock: true},
	} {
		if _, err := cat.Upsert(&it); err != nil {
			panic(err)
		}
	}
	g, err := events.Open("", events.DefaultConfig(), cat) // "" keeps no WAL: tests only
	if err != nil {
		panic(err)
	}
	defer g.Close()

	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	body := []byte(`{"type":"click","session_id":"s1","item_id":"shoe"}
{"type":"purchase","session_id":"s1","item_id":"sock"}
{"type":"click","session_id":"s1"}`)
	res, err := g.Ingest(body, now)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(res.AppendJSON(nil)))

	st := g.State()
	fmt.Printf("session vector %.2f\n", st.SessionVector("", "s1", now, nil))
	for _, id := range st.AppendExcluded("", "s1", now, nil) {
		fmt.Println("excluded", cat.ItemName(id))
	}
	col, _ := st.FeatureColumn("item_clicks_1h")
	shoe, _ := cat.Items().Lookup("shoe")
	fmt.Println("item_clicks_1h of shoe", st.Gather([]uint32{shoe}, []int{col}, now, nil))
	// Output:
	// {"accepted":2,"rejected":1,"accepted_by_type":{"click":1,"purchase":1},"rejected_by_type":{"click":1},"errors":[{"index":2,"type":"click","code":"missing_id","error":"a click needs an item_id"}]}
	// session vector [0.25 0.75]
	// excluded sock
	// item_clicks_1h of shoe [1]
}
