package server

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/bytedance/sonic"

	"github.com/podium-rank/podium/engine"
	"github.com/podium-rank/podium/engine/ann"
	"github.com/podium-rank/podium/engine/demo"
	"github.com/podium-rank/podium/engine/events"
)

// testEngine builds one small demo engine per test binary; tests that change the catalog
// make their own.
var (
	sharedOnce sync.Once
	sharedURL  string
)

func smallDemo() demo.Config {
	cfg := demo.DefaultConfig()
	cfg.Items, cfg.Users, cfg.Clusters, cfg.Dim = 2000, 200, 40, 16
	return cfg
}

func startEngine(t testing.TB, ready bool, scfg Config) (string, *engine.Engine) {
	t.Helper()
	e, ln := newEngine(t, ready)
	s := New(e, scfg)
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown() })
	return "http://" + ln.Addr().String(), e
}

func newEngine(t testing.TB, ready bool) (*engine.Engine, net.Listener) {
	t.Helper()
	dc := smallDemo()
	// A small graph keeps the -race build of the index quick.
	e, err := engine.New(engine.Config{Dim: dc.Dim, HNSW: ann.HNSWConfig{M: 8, EfConstruction: 40}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.LoadDemo(dc); err != nil {
		t.Fatal(err)
	}
	if err := e.OpenEvents(t.TempDir(), events.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	if ready {
		e.SetReady()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return e, ln
}

// sharedServer starts one engine for the read-only tests; it lives until the test binary
// exits.
func sharedServer(t *testing.T) string {
	sharedOnce.Do(func() {
		e, ln := newEngine(t, true)
		go New(e, Config{MaxRankBody: 4096}).Serve(ln)
		sharedURL = "http://" + ln.Addr().String()
	})
	return sharedURL
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

type rankBody struct {
	RequestID string `json:"request_id"`
	Items     []struct {
		ID    string  `json:"id"`
		Score float64 `json:"score"`
	} `json:"items"`
	Fallback bool     `json:"fallback"`
	TookUS   int64    `json:"took_us"`
	Warnings []string `json:"warnings"`
	Pipeline []struct {
		Stage    string `json:"stage"`
		Plugin   string `json:"plugin"`
		Version  string `json:"version"`
		FellBack bool   `json:"fell_back"`
	} `json:"pipeline"`
}

func do(t *testing.T, method, url, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 && !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s %s: status %d with content type %q", method, url, resp.StatusCode, ct)
	}
	return resp.StatusCode, b
}

func rank(t *testing.T, url, body string) rankBody {
	t.Helper()
	code, b := do(t, "POST", url+"/v1/rank", body)
	if code != 200 {
		t.Fatalf("rank %s: %d %s", body, code, b)
	}
	var r rankBody
	if err := sonic.Unmarshal(b, &r); err != nil {
		t.Fatalf("bad JSON %s: %v", b, err)
	}
	return r
}

func TestRankRoutes(t *testing.T) {
	url := sharedServer(t)
	r := rank(t, url, `{"user_id":"u1","session_id":"s1","k":20,"context":{"page":"home"}}`)
	if len(r.Items) != 20 || r.RequestID == "" || r.Fallback || len(r.Pipeline) != 1 || r.Pipeline[0].Version != "native" {
		t.Fatalf("personalised: %+v", r)
	}
	for i := 1; i < len(r.Items); i++ {
		if r.Items[i].Score > r.Items[i-1].Score {
			t.Fatalf("scores not descending at %d: %+v", i, r.Items)
		}
	}
	// Default k, anonymous user.
	if r := rank(t, url, `{}`); len(r.Items) != engine.DefaultK {
		t.Fatalf("default k: got %d items", len(r.Items))
	}
	// An unknown user is not an error.
	if r := rank(t, url, `{"user_id":"nobody","k":5}`); len(r.Items) != 5 {
		t.Fatalf("unknown user: %+v", r)
	}
	// Neighbours of the context item never include the item itself; exclusions hold.
	r = rank(t, url, `{"k":50,"context":{"item_id":"i9"},"exclude":["i10","i11"]}`)
	for _, it := range r.Items {
		if it.ID == "i9" || it.ID == "i10" || it.ID == "i11" {
			t.Fatalf("returned excluded item %s", it.ID)
		}
	}
	// Rerank mode keeps to the given candidates and warns about unknown ones.
	r = rank(t, url, `{"k":5,"user_id":"u2","candidates":["i3","i4","i5","nope"]}`)
	if len(r.Items) != 3 || len(r.Warnings) != 1 {
		t.Fatalf("rerank: %+v", r)
	}
	for _, it := range r.Items {
		if it.ID != "i3" && it.ID != "i4" && it.ID != "i5" {
			t.Fatalf("rerank returned %s", it.ID)
		}
	}
}

func TestErrors(t *testing.T) {
	url := sharedServer(t)
	cases := []struct {
		method, path, body string
		status             int
		code, msg          string
	}{
		{"POST", "/v1/rank", `{"k":0}`, 400, "invalid_argument", "k must be between 1 and 1000"},
		{"POST", "/v1/rank", `{"k":1001}`, 400, "invalid_argument", "k must be between 1 and 1000"},
		{"POST", "/v1/rank", `{"k":2.5}`, 400, "invalid_argument", "whole number"},
		{"POST", "/v1/rank", `{"k":"20"}`, 400, "invalid_argument", "invalid JSON"},
		{"POST", "/v1/rank", `{"user":"u1"}`, 400, "invalid_argument", "invalid JSON"},
		{"POST", "/v1/rank", `{"context":{"a":{"b":1}}}`, 400, "invalid_argument", "context.a must be a string or a number"},
		{"POST", "/v1/rank", `{"exclude":[""]}`, 400, "invalid_argument", "exclude[0]"},
		{"POST", "/v1/rank", `{"candidates":[]}`, 400, "invalid_argument", "candidates is empty"},
		{"POST", "/v1/rank", `not json`, 400, "invalid_argument", "invalid JSON"},
		{"POST", "/v1/rank", ``, 400, "invalid_argument", "body is empty"},
		{"POST", "/v1/rank", `{"k":1,"context":{"pad":"` + strings.Repeat("x", 5000) + `"}}`, 413, "payload_too_large", "larger than 4096"},
		{"GET", "/v1/rank", ``, 405, "method_not_allowed", "use POST"},
		{"POST", "/v1/items", ``, 405, "method_not_allowed", "use PUT"},
		{"POST", "/livez", ``, 405, "method_not_allowed", "use GET"},
		{"GET", "/v2/rank", ``, 404, "not_found", "no route"},
		{"DELETE", "/v1/items/nope", ``, 404, "not_found", "no item"},
		{"PUT", "/v1/items", ``, 400, "invalid_argument", "no NDJSON lines"},
		{"PUT", "/v1/items", "{\"id\":\"\"}\n", 400, "invalid_argument", "none of the 1 lines"},
	}
	for _, c := range cases {
		status, b := do(t, c.method, url+c.path, c.body)
		var eb errorBody
		if err := sonic.Unmarshal(b, &eb); err != nil {
			t.Errorf("%s %s %.40q: body %s is not JSON", c.method, c.path, c.body, b)
			continue
		}
		if status != c.status || eb.Error.Code != c.code || !strings.Contains(eb.Error.Message, c.msg) {
			t.Errorf("%s %s %.40q: got %d %s %q, want %d %s %q", c.method, c.path, c.body, status, eb.Error.Code, eb.Error.Message, c.status, c.code, c.msg)
		}
	}
}

func TestHealth(t *testing.T) {
	url, e := startEngine(t, false, Config{})
	if code, _ := do(t, "GET", url+"/livez", ""); code != 200 {
		t.Fatalf("livez %d", code)
	}
	code, b := do(t, "GET", url+"/readyz", "")
	if code != 503 || !bytes.Contains(b, []byte("not_ready")) {
		t.Fatalf("readyz before load: %d %s", code, b)
	}
	if code, _ := do(t, "POST", url+"/v1/rank", "{}"); code != 503 {
		t.Fatalf("rank before ready: %d", code)
	}
	e.SetReady()
	if code, _ := do(t, "GET", url+"/readyz", ""); code != 200 {
		t.Fatalf("readyz after load: %d", code)
	}
	if code, b := do(t, "GET", url+"/metrics", ""); code != 200 || !bytes.Contains(b, []byte("podium_rank_requests_total")) {
		t.Fatalf("metrics: %d %s", code, b)
	}
}

func TestBulkUpsertAndDelete(t *testing.T) {
	url, _ := startEngine(t, true, Config{})
	emb := strings.TrimSuffix(strings.Repeat("0.5,", 16), ",")
	body := strings.Join([]string{
		`{"id":"new1","embedding":[` + emb + `],"features":{"popularity":1000},"attributes":{"category":"c1"}}`,
		`{"id":"new2","embedding":[1,2]}`,
		`{"id":"new1","embedding":[` + emb + `]}`,
		`{"id":"","embedding":[` + emb + `]}`,
		`{"id":"new3","embedding":[` + strings.Repeat("0,", 15) + `0]}`,
	}, "\n")
	code, b := do(t, "PUT", url+"/v1/items", body)
	var rep struct {
		Accepted int `json:"accepted"`
		Failed   int `json:"failed"`
		Errors   []struct {
			Line  int    `json:"line"`
			Error string `json:"error"`
		} `json:"errors"`
	}
	if err := sonic.Unmarshal(b, &rep); err != nil || code != 200 {
		t.Fatalf("bulk: %d %s", code, b)
	}
	if rep.Accepted != 1 || rep.Failed != 4 || rep.Errors[0].Line != 2 || !strings.Contains(rep.Errors[0].Error, "dimension") ||
		!strings.Contains(rep.Errors[1].Error, "duplicate") || !strings.Contains(rep.Errors[3].Error, "all zeros") {
		t.Fatalf("report: %s", b)
	}
	// The new item is retrievable at once: it is the nearest neighbour of its own vector
	// direction and, after a popularity refresh, the most popular.
	r := rank(t, url, `{"k":3,"candidates":["new1"]}`)
	if len(r.Items) != 1 || r.Items[0].ID != "new1" {
		t.Fatalf("new item not rankable: %+v", r)
	}
	code, b = do(t, "PUT", url+"/v1/users", `{"id":"unew","embedding":[`+emb+`]}`+"\n"+`{"id":"ubad","embedding":[1]}`)
	if code != 200 || !bytes.Contains(b, []byte(`"accepted":1`)) {
		t.Fatalf("users: %d %s", code, b)
	}
	r = rank(t, url, `{"k":5,"user_id":"unew"}`)
	if len(r.Items) == 0 || r.Items[0].ID != "new1" {
		t.Fatalf("user whose embedding equals new1's should get it first: %+v", r.Items)
	}
	if code, b := do(t, "DELETE", url+"/v1/items/new1", ""); code != 200 || !bytes.Contains(b, []byte(`"deleted":"new1"`)) {
		t.Fatalf("delete: %d %s", code, b)
	}
	r = rank(t, url, `{"k":50,"user_id":"unew"}`)
	for _, it := range r.Items {
		if it.ID == "new1" {
			t.Fatal("deleted item returned")
		}
	}
	if code, _ := do(t, "DELETE", url+"/v1/items/new1", ""); code != 404 {
		t.Fatalf("second delete: %d", code)
	}
	// The HNSW index keeps the deleted item as a tombstone until a compaction; /metrics says so.
	if code, b := do(t, "GET", url+"/metrics", ""); code != 200 || !bytes.Contains(b, []byte("podium_ann_items{state=\"deleted\"} 1\n")) ||
		!bytes.Contains(b, []byte("podium_ann_compactions_total 0\n")) {
		t.Fatalf("metrics after a delete: %d %s", code, b)
	}
}

func TestLargeBulkStreams(t *testing.T) {
	url, e := startEngine(t, true, Config{MaxRankBody: 1024})
	var sb strings.Builder
	for i := 0; i < 2000; i++ {
		fmt.Fprintf(&sb, `{"id":"bulk%d","features":{"popularity":%d}}`+"\n", i, i)
	}
	code, b := do(t, "PUT", url+"/v1/items", sb.String())
	if code != 200 || !bytes.Contains(b, []byte(`"accepted":2000`)) {
		t.Fatalf("streamed bulk (%d bytes over a 1 KiB in-memory limit): %d %s", sb.Len(), code, b)
	}
	if _, ok := e.Catalog().Items().Lookup("bulk1999"); !ok {
		t.Fatal("last line not applied")
	}
}

func TestOutOfStockNeverReturned(t *testing.T) {
	url, e := startEngine(t, true, Config{})
	r := rank(t, url, `{"k":10,"user_id":"u3"}`)
	top := r.Items[0].ID
	if code, b := do(t, "PUT", url+"/v1/items", `{"id":"`+top+`","stock":0}`); code != 200 {
		t.Fatalf("stock update: %d %s", code, b)
	}
	_ = e
	r = rank(t, url, `{"k":10,"user_id":"u3"}`)
	for _, it := range r.Items {
		if it.ID == top {
			t.Fatalf("out-of-stock %s returned", top)
		}
	}
	r = rank(t, url, `{"k":10,"candidates":["`+top+`"]}`)
	if len(r.Items) != 0 {
		t.Fatalf("out-of-stock candidate returned in rerank: %+v", r.Items)
	}
}
