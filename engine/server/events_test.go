package server

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bytedance/sonic"
)

func TestEventsRoute(t *testing.T) {
	url, _ := startEngine(t, true, Config{})
	code, b := do(t, "POST", url+"/v1/events", `[{"type":"click","user_id":"u1","session_id":"s1","item_id":"i9"},
		{"type":"teleport","item_id":"i9"},{"type":"view","session_id":"s1"},
		{"type":"impression","user_id":"u1","request_id":"r1","item_ids":["i9","i3"]},
		{"type":"item_update","item_id":"i4","stock":5,"price":12.5},
		{"type":"click","user_id":"u1","item_id":"i9","ts":"`+time.Now().Add(time.Hour).UTC().Format(time.RFC3339)+`"}]`)
	if code != 202 {
		t.Fatalf("events: %d %s", code, b)
	}
	var res struct {
		Accepted int `json:"accepted"`
		Rejected int `json:"rejected"`
		Errors   []struct {
			Index int    `json:"index"`
			Error string `json:"error"`
		} `json:"errors"`
	}
	if err := sonic.Unmarshal(b, &res); err != nil || res.Accepted != 3 || res.Rejected != 3 {
		t.Fatalf("result %s (%v)", b, err)
	}
	if res.Errors[0].Index != 1 || res.Errors[1].Index != 2 || res.Errors[2].Index != 5 || !strings.Contains(res.Errors[2].Error, "ahead of the server clock") {
		t.Fatalf("rejections %s", b)
	}
	// NDJSON works too.
	if code, b := do(t, "POST", url+"/v1/events", "{\"type\":\"view\",\"session_id\":\"s2\",\"item_id\":\"i1\"}\n{\"type\":\"view\",\"session_id\":\"s2\",\"item_id\":\"i2\"}\n"); code != 202 || !bytes.Contains(b, []byte(`"accepted":2`)) {
		t.Fatalf("ndjson: %d %s", code, b)
	}
	for _, c := range []struct {
		body   string
		status int
		msg    string
	}{
		{``, 400, "no events"},
		{`{"type":`, 400, "none of the 1 events"},
		{`[{"type":"view"`, 400, "JSON array or NDJSON"},
		{`[{"type":"teleport"}]`, 400, "none of the 1 events"},
	} {
		code, b := do(t, "POST", url+"/v1/events", c.body)
		var eb errorBody
		if err := sonic.Unmarshal(b, &eb); err != nil || code != c.status || !strings.Contains(eb.Error.Message, c.msg) {
			t.Errorf("POST /v1/events %q: %d %s, want %d %q", c.body, code, b, c.status, c.msg)
		}
	}
	if code, _ := do(t, "GET", url+"/v1/events", ""); code != 405 {
		t.Fatalf("GET /v1/events: %d", code)
	}
	if code, b := do(t, "GET", url+"/metrics", ""); code != 200 || !bytes.Contains(b, []byte(`podium_events_total{type="click",result="accepted"} 1`)) {
		t.Fatalf("metrics: %s", b)
	}
}

// TestClicksBringCategoryIntoSession: an anonymous session that clicks items of one
// category sees that category in its very next top-20.
func TestClicksBringCategoryIntoSession(t *testing.T) {
	url, e := startEngine(t, true, Config{})
	cat := e.Catalog()
	ci, _ := cat.AttributeIndex("category")
	categoryOfItem := func(id string) string {
		dense, _ := cat.Items().Lookup(id)
		return cat.AttributeValue(ci, dense)
	}
	count := func(r rankBody, c string) int {
		n := 0
		for _, it := range r.Items {
			if categoryOfItem(it.ID) == c {
				n++
			}
		}
		return n
	}
	before := rank(t, url, `{"session_id":"anon-1","k":20}`)
	// Pick the category least present in the cold top-20 among items 0..99.
	target, best := "", 21
	var clicked []string
	for i := 0; i < 100; i++ {
		c := categoryOfItem(fmt.Sprintf("i%d", i))
		if n := count(before, c); n < best {
			target, best = c, n
		}
	}
	for i := 0; i < 2000 && len(clicked) < 3; i++ {
		id := fmt.Sprintf("i%d", i)
		dense, _ := cat.Items().Lookup(id)
		if categoryOfItem(id) == target && cat.Available(dense) {
			clicked = append(clicked, id)
		}
	}
	var evs []string
	for _, id := range clicked {
		evs = append(evs, fmt.Sprintf(`{"type":"click","session_id":"anon-1","item_id":%q}`, id))
	}
	if code, b := do(t, "POST", url+"/v1/events", "["+strings.Join(evs, ",")+"]"); code != 202 {
		t.Fatalf("events: %d %s", code, b)
	}
	after := rank(t, url, `{"session_id":"anon-1","k":20}`)
	if got := count(after, target); got < 5 || got <= best {
		t.Fatalf("category %s: %d of the top-20 before the clicks, %d after; want at least 5", target, best, got)
	}
	// Another anonymous session is untouched.
	other := rank(t, url, `{"session_id":"anon-2","k":20}`)
	if count(other, target) != best {
		t.Fatalf("another session changed: %d vs %d", count(other, target), best)
	}
}

// TestStockZeroEventRemovesItem: an item_update with stock 0 removes the item from every
// later response, personalised, cold and rerank alike.
func TestStockZeroEventRemovesItem(t *testing.T) {
	url, _ := startEngine(t, true, Config{})
	r := rank(t, url, `{"user_id":"u4","k":10}`)
	top := r.Items[0].ID
	cold := rank(t, url, `{"k":10}`).Items[0].ID
	for _, id := range []string{top, cold} {
		if code, b := do(t, "POST", url+"/v1/events", `{"type":"item_update","item_id":"`+id+`","stock":0}`); code != 202 {
			t.Fatalf("stock update: %d %s", code, b)
		}
	}
	for _, body := range []string{`{"user_id":"u4","k":50}`, `{"k":50}`, `{"k":5,"candidates":["` + top + `","` + cold + `","i1"]}`,
		`{"k":50,"context":{"item_id":"` + top + `"}}`} {
		for _, it := range rank(t, url, body).Items {
			if it.ID == top || it.ID == cold {
				t.Fatalf("%s: sold-out item %s returned", body, it.ID)
			}
		}
	}
}
