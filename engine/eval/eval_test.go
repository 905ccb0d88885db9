package eval

import (
	"net"
	"strings"
	"testing"

	"github.com/podium-rank/podium/engine"
	"github.com/podium-rank/podium/engine/demo"
	"github.com/podium-rank/podium/engine/events"
	"github.com/podium-rank/podium/engine/pipeline"
	"github.com/podium-rank/podium/engine/server"
)

// startEngine serves a small demo catalog with in-memory events over loopback, ranking
// with pipe (nil: the default blend), and returns its address and the demo data set.
func startEngine(t *testing.T, pipe string) (string, *demo.Dataset) {
	t.Helper()
	cfg := demo.DefaultConfig()
	cfg.Items, cfg.Users, cfg.Clusters, cfg.Dim = 6000, 500, 120, 16
	e, err := engine.New(engine.Config{Dim: cfg.Dim, Index: "flat"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.LoadDemo(cfg); err != nil {
		t.Fatal(err)
	}
	if err := e.OpenEvents("", events.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	if pipe != "" {
		pc, err := pipeline.ParseConfig([]byte(pipe))
		if err != nil {
			t.Fatal(err)
		}
		p, err := e.BuildPipeline(pc, ".")
		if err != nil {
			t.Fatal(err)
		}
		e.SetPipeline(p)
	}
	e.SetReady()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(e, server.Config{})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return "http://" + ln.Addr().String(), demo.Generate(cfg)
}

func demoLog(d *demo.Dataset) []Event {
	scfg := demo.DefaultSessionConfig()
	scfg.Sessions = 400
	var log []Event
	for _, e := range demo.Sessions(d, scfg) {
		log = append(log, Event{Type: e.Type, UserID: e.UserID, SessionID: e.SessionID, ItemID: e.ItemID, TS: e.TS})
	}
	return log
}

// TestReplayScoresSessionsOverHTTP replays synthetic sessions through two engines: the
// default blend must beat ranking by popularity alone on what the sessions did next, and
// every figure must be a share.
func TestReplayScoresSessionsOverHTTP(t *testing.T) {
	addr, d := startEngine(t, "")
	log := demoLog(d)
	rep, err := Run(Config{Addr: addr, K: 20}, log)
	if err != nil {
		t.Fatal(err)
	}
	popAddr, _ := startEngine(t, `{"stages":[{"name":"rank","kind":"rank","plugin":"native:linear","params":{"weights":{"popularity_score":1}}}]}`)
	pop, err := Run(Config{Addr: popAddr, K: 20}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s\n%s", Markdown([]string{"default blend", "popularity only"}, []*Report{rep, pop}), Compare(rep, pop))
	if c := Compare(rep, pop); !strings.HasPrefix(c, "candidate / baseline: recall ") || strings.Contains(c, "recall 1.00x") {
		t.Fatalf("compare: %s", c)
	}
	if rep.Requests == 0 || rep.Requests != pop.Requests || rep.History == 0 || rep.TestSessions == 0 {
		t.Fatalf("nothing scored: %+v", rep)
	}
	for _, r := range []*Report{rep, pop} {
		for _, v := range []float64{r.Recall, r.HitRate, r.NDCG, r.MRR, r.RepeatShare} {
			if v < 0 || v > 1 {
				t.Fatalf("a figure outside 0..1: %+v", r)
			}
		}
		if r.Rejected != 0 || r.Fallbacks != 0 {
			t.Fatalf("rejected or fell back: %+v", r)
		}
	}
	if rep.Recall <= pop.Recall+0.05 || rep.NDCG <= pop.NDCG {
		t.Fatalf("the default blend (recall %.3f, NDCG %.3f) does not beat popularity (recall %.3f, NDCG %.3f)",
			rep.Recall, rep.NDCG, pop.Recall, pop.NDCG)
	}
	// "rest" scores every later item: a hit is more likely, recall per item lower or equal.
	rest, err := Run(Config{Addr: popAddr, K: 20, Target: TargetRest, MaxTest: 20}, log)
	if err != nil || rest.TestSessions != 20 || rest.HitRate < rest.Recall {
		t.Fatalf("rest: %+v, %v", rest, err)
	}
}

func TestScore(t *testing.T) {
	var r Report
	score(&r, []string{"a", "b", "c"}, []string{"b"}, 3)
	if r.Recall != 1 || r.HitRate != 1 || r.MRR != 0.5 || r.NDCG < 0.63 || r.NDCG > 0.631 {
		t.Fatalf("one hit at rank 2: %+v", r)
	}
	r = Report{}
	score(&r, []string{"a", "b"}, []string{"a", "x"}, 2)
	if r.Recall != 0.5 || r.MRR != 1 || r.NDCG <= 0.6 || r.NDCG >= 0.62 { // 1 / (1 + 1/log2 3)
		t.Fatalf("one of two at rank 1: %+v", r)
	}
	r = Report{}
	score(&r, []string{"a", "b", "c"}, []string{"c"}, 2)
	if r.Recall != 0 || r.HitRate != 0 || r.NDCG != 0 || r.MRR != 0 {
		t.Fatalf("a hit beyond k counts: %+v", r)
	}
}

func TestReadEvents(t *testing.T) {
	in := `{"type":"view","session_id":"s1","item_id":"i1","ts":"2026-11-01T10:00:00Z"}
{"type":"impression","request_id":"r1","item_ids":["i1"]}

{"type":"item_update","item_id":"i1","stock":0}
{"type":"purchase","user_id":"u1","item_id":"i2","ts":"2026-11-01T10:01:00Z"}
`
	log, err := ReadEvents(strings.NewReader(in))
	if err != nil || len(log) != 2 || log[1].Type != "purchase" || log[1].UserID != "u1" {
		t.Fatalf("%+v %v", log, err)
	}
	arr, err := ReadEvents(strings.NewReader(` [{"type":"click","item_id":"i3"}]`))
	if err != nil || len(arr) != 1 || arr[0].ItemID != "i3" {
		t.Fatalf("array: %+v %v", arr, err)
	}
	if _, err := ReadEvents(strings.NewReader("{\"type\":\"view\"}\nnot json\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("bad line: %v", err)
	}
	if _, err := Run(Config{Addr: "127.0.0.1:1", Target: "sideways"}, log); err == nil || !strings.Contains(err.Error(), "target") {
		t.Fatalf("bad target: %v", err)
	}
}
