// Package eval replays an interaction log against a running engine over HTTP and scores
// its rankings by what users did next: the way a ranking is judged offline before it
// serves anyone, and the way to compare two pipelines on the same traffic.
//
// The replay keeps time's arrow: the log is sorted by time; the sessions that start first
// (1 − TestFraction of them) are sent to /v1/events as history; the rest are replayed event
// by event, and after each event of a test session that has a successor the evaluator asks
// /v1/rank for that session (and user) and scores the answer against the session's next
// item (Target "next") or all its later items (Target "rest").
package eval

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/bytedance/sonic"
	"github.com/valyala/fasthttp"
)

// Event is one interaction of a log, in the /v1/events shape.
type Event struct {
	Type      string    `json:"type"`
	UserID    string    `json:"user_id,omitempty"`
	SessionID string    `json:"session_id,omitempty"`
	ItemID    string    `json:"item_id"`
	TS        time.Time `json:"ts"`
}

// Targets.
const (
	TargetNext = "next" // the session's next item
	TargetRest = "rest" // every later item of the session
)

// Config says what to replay against and how to score.
type Config struct {
	// Addr is the engine's base URL, e.g. http://127.0.0.1:8080.
	Addr string
	// K is the number of items asked for and scored (default 20).
	K int
	// TestFraction is the share of sessions, the latest by start time, that are scored
	// (default 0.2). The others are history.
	TestFraction float64
	// MaxTest caps the scored sessions (0: no cap); the earliest test sessions are kept.
	MaxTest int
	// Target is TargetNext (default) or TargetRest.
	Target string
	// Anonymous leaves user_id out of the rank requests, so only the session speaks.
	Anonymous bool
	// ContextItem sends the session's current item as context.item_id, the way an item
	// page would ask. The engine does not recommend that item back.
	ContextItem bool
	// Batch is the number of history events per POST /v1/events (default 500).
	Batch int
	// Timeout bounds each HTTP call (default 10s).
	Timeout time.Duration
}

// Report is the outcome of a replay. Metrics are means over the scored requests.
type Report struct {
	K            int     `json:"k"`
	Target       string  `json:"target"`
	Events       int     `json:"events"`        // events in the log
	History      int     `json:"history"`       // events sent as history
	TestSessions int     `json:"test_sessions"` // sessions scored
	Requests     int     `json:"requests"`      // rank requests scored
	Recall       float64 `json:"recall"`        // share of target items in the top k
	HitRate      float64 `json:"hit_rate"`      // requests with at least one target item in the top k
	NDCG         float64 `json:"ndcg"`          // binary-relevance NDCG@k
	MRR          float64 `json:"mrr"`           // reciprocal rank of the first target item (0 beyond k)
	// RepeatShare is the share of next items the session had already interacted with.
	RepeatShare float64 `json:"repeat_share"`
	// Rejected counts events the engine refused (unknown item, say); they are skipped.
	Rejected  int `json:"rejected"`
	Fallbacks int `json:"fallbacks"` // responses where a stage fell back
	// MeanTookUS is the engine's mean took_us over the scored requests.
	MeanTookUS float64 `json:"mean_took_us"`
}

// ReadEvents reads an NDJSON (or JSON array) log of interactions. Lines whose type is not an
// interaction (impressions, item updates) and lines without an item are skipped; a line
// that is not JSON is an error naming it. Events without ts keep their order at the end.
func ReadEvents(r io.Reader) ([]Event, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	first, err := br.Peek(1)
	for err == nil && (first[0] == ' ' || first[0] == '\n' || first[0] == '\r' || first[0] == '\t') {
		br.ReadByte()
		first, err = br.Peek(1)
	}
	if err == io.EOF {
		return nil, nil
	}
	var all []Event
	if first[0] == '[' {
		var raw []Event
		b, err := io.ReadAll(br)
		if err != nil {
			return nil, err
		}
		if err := sonic.Unmarshal(b, &raw); err != nil {
			return nil, fmt.Errorf("eval: the log is not a JSON array of events: %w", err)
		}
		all = raw
	} else {
		sc := bufio.NewScanner(br)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		line := 0
		for sc.Scan() {
			line++
			b := bytes.TrimSpace(sc.Bytes())
			if len(b) == 0 {
				continue
			}
			var e Event
			if err := sonic.Unmarshal(b, &e); err != nil {
				return nil, fmt.Errorf("eval: line %d: %w", line, err)
			}
			all = append(all, e)
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("eval: after line %d: %w", line, err)
		}
	}
	out := all[:0]
	for _, e := range all {
		switch e.Type {
		case "view", "click", "add_to_cart", "purchase":
			if e.ItemID != "" {
				out = append(out, e)
			}
		}
	}
	return out, nil
}

type session struct {
	key    string
	start  time.Time
	events []int // indexes into the log, in time order
	test   bool
}

// Run replays log against cfg.Addr and scores the test sessions.
func Run(cfg Config, log []Event) (*Report, error) {
	if cfg.Addr == "" {
		return nil, errors.New("eval: no engine address")
	}
	cfg.Addr = strings.TrimRight(cfg.Addr, "/")
	if !strings.Contains(cfg.Addr, "://") {
		cfg.Addr = "http://" + cfg.Addr
	}
	if cfg.K <= 0 {
		cfg.K = 20
	}
	if cfg.TestFraction <= 0 || cfg.TestFraction >= 1 {
		cfg.TestFraction = 0.2
	}
	if cfg.Target == "" {
		cfg.Target = TargetNext
	}
	if cfg.Target != TargetNext && cfg.Target != TargetRest {
		return nil, fmt.Errorf("eval: target %q; want %q or %q", cfg.Target, TargetNext, TargetRest)
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if len(log) == 0 {
		return nil, errors.New("eval: the log has no interactions")
	}
	log = slices.Clone(log)
	slices.SortStableFunc(log, func(a, b Event) int { return a.TS.Compare(b.TS) })

	// Sessions by start time; an event without a session belongs to its user's.
	byKey := map[string]*session{}
	var sessions []*session
	for i, e := range log {
		key := "s:" + e.SessionID
		if e.SessionID == "" {
			key = "u:" + e.UserID
		}
		s := byKey[key]
		if s == nil {
			s = &session{key: key, start: e.TS}
			byKey[key] = s
			sessions = append(sessions, s)
		}
		s.events = append(s.events, i)
	}
	slices.SortStableFunc(sessions, func(a, b *session) int { return a.start.Compare(b.start) })
	nTest := int(math.Round(cfg.TestFraction * float64(len(sessions))))
	first := len(sessions) - nTest
	scored := 0
	for _, s := range sessions[first:] {
		if cfg.MaxTest > 0 && scored >= cfg.MaxTest {
			break
		}
		if len(s.events) >= 2 {
			s.test = true
			scored++
		}
	}
	testOf := make([]*session, len(log)) // the test session of each event, nil for history
	pos := make([]int, len(log))         // the event's position in its session
	for _, s := range sessions {
		for k, i := range s.events {
			pos[i] = k
			if s.test {
				testOf[i] = s
			}
		}
	}

	c := &client{cfg: cfg, hc: &fasthttp.Client{ReadTimeout: cfg.Timeout, WriteTimeout: cfg.Timeout,
		MaxResponseBodySize: 64 << 20, NoDefaultUserAgentHeader: true}}
	rep := &Report{K: cfg.K, Target: cfg.Target, Events: len(log), TestSessions: scored}
	var batch []int
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		rej, err := c.post(log, batch)
		rep.Rejected += rej
		batch = batch[:0]
		return err
	}
	var took float64
	for i, e := range log {
		s := testOf[i]
		if s == nil {
			batch = append(batch, i)
			rep.History++
			if len(batch) >= cfg.Batch {
				if err := flush(); err != nil {
					return nil, err
				}
			}
			continue
		}
		if err := flush(); err != nil {
			return nil, err
		}
		rej, err := c.post(log, []int{i})
		if err != nil {
			return nil, err
		}
		rep.Rejected += rej
		k := pos[i]
		if k == len(s.events)-1 {
			continue
		}
		var targets []string
		later := s.events[k+1:]
		if cfg.Target == TargetNext {
			later = later[:1]
		}
		for _, j := range later {
			if !slices.Contains(targets, log[j].ItemID) {
				targets = append(targets, log[j].ItemID)
			}
		}
		next := log[s.events[k+1]].ItemID
		for _, j := range s.events[:k+1] {
			if log[j].ItemID == next {
				rep.RepeatShare++
				break
			}
		}
		ids, fellBack, tookUS, err := c.rank(e)
		if err != nil {
			return nil, err
		}
		rep.Requests++
		if fellBack {
			rep.Fallbacks++
		}
		took += tookUS
		score(rep, ids, targets, cfg.K)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	if rep.Requests > 0 {
		n := float64(rep.Requests)
		rep.Recall /= n
		rep.HitRate /= n
		rep.NDCG /= n
		rep.MRR /= n
		rep.RepeatShare /= n
		rep.MeanTookUS = took / n
	}
	return rep, nil
}

// score adds one request's recall, hit, NDCG and reciprocal rank to rep's sums.
func score(rep *Report, ids, targets []string, k int) {
	ids = ids[:min(len(ids), k)]
	var hits int
	var dcg float64
	first := 0
	for r, id := range ids {
		if slices.Contains(targets, id) {
			hits++
			dcg += 1 / math.Log2(float64(r)+2)
			if first == 0 {
				first = r + 1
			}
		}
	}
	var idcg float64
	for r := range min(len(targets), k) {
		idcg += 1 / math.Log2(float64(r)+2)
	}
	rep.Recall += float64(hits) / float64(len(targets))
	if hits > 0 {
		rep.HitRate++
		rep.MRR += 1 / float64(first)
	}
	if idcg > 0 {
		rep.NDCG += dcg / idcg
	}
}

type client struct {
	cfg Config
	hc  *fasthttp.Client
	buf []byte
}

func (c *client) do(path string, body []byte) ([]byte, int, error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(c.cfg.Addr + path)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	req.SetBody(body)
	if err := c.hc.DoTimeout(req, resp, c.cfg.Timeout); err != nil {
		return nil, 0, fmt.Errorf("eval: POST %s: %w", path, err)
	}
	return slices.Clone(resp.Body()), resp.StatusCode(), nil
}

// post sends events as NDJSON and returns how many the engine rejected.
func (c *client) post(log []Event, idx []int) (int, error) {
	b := c.buf[:0]
	for _, i := range idx {
		line, err := sonic.Marshal(log[i])
		if err != nil {
			return 0, err
		}
		b = append(append(b, line...), '\n')
	}
	c.buf = b
	body, status, err := c.do("/v1/events", b)
	if err != nil {
		return 0, err
	}
	if status != fasthttp.StatusAccepted {
		return 0, fmt.Errorf("eval: POST /v1/events answered %d: %s", status, clip(body))
	}
	var ack struct {
		Rejected int `json:"rejected"`
	}
	if err := sonic.Unmarshal(body, &ack); err != nil {
		return 0, fmt.Errorf("eval: POST /v1/events answer: %w", err)
	}
	return ack.Rejected, nil
}

// rank asks for the top k after event e and returns the ids.
func (c *client) rank(e Event) ([]string, bool, float64, error) {
	req := map[string]any{"k": c.cfg.K}
	if e.SessionID != "" {
		req["session_id"] = e.SessionID
	}
	if e.UserID != "" && (!c.cfg.Anonymous || e.SessionID == "") {
		req["user_id"] = e.UserID
	}
	if c.cfg.ContextItem {
		req["context"] = map[string]any{"item_id": e.ItemID}
	}
	b, err := sonic.Marshal(req)
	if err != nil {
		return nil, false, 0, err
	}
	body, status, err := c.do("/v1/rank", b)
	if err != nil {
		return nil, false, 0, err
	}
	if status != fasthttp.StatusOK {
		return nil, false, 0, fmt.Errorf("eval: POST /v1/rank answered %d: %s", status, clip(body))
	}
	var resp struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
		Fallback bool    `json:"fallback"`
		TookUS   float64 `json:"took_us"`
	}
	if err := sonic.Unmarshal(body, &resp); err != nil {
		return nil, false, 0, fmt.Errorf("eval: POST /v1/rank answer: %w", err)
	}
	ids := make([]string, len(resp.Items))
	for i, it := range resp.Items {
		ids[i] = it.ID
	}
	return ids, resp.Fallback, resp.TookUS, nil
}

func clip(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

// Markdown renders reports side by side as a table, one row per named report.
func Markdown(names []string, reps []*Report) string {
	var b strings.Builder
	b.WriteString("| run | k | target | requests | recall | hit rate | NDCG | MRR | repeat share | fallbacks | took µs |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for i, r := range reps {
		fmt.Fprintf(&b, "| %s | %d | %s | %d | %.4f | %.4f | %.4f | %.4f | %.3f | %d | %.0f |\n",
			names[i], r.K, r.Target, r.Requests, r.Recall, r.HitRate, r.NDCG, r.MRR, r.RepeatShare, r.Fallbacks, r.MeanTookUS)
	}
	return b.String()
}

// Compare says how a candidate's figures relate to a baseline's on the same log, as ratios
// (candidate / baseline), e.g. "recall 1.12x, NDCG 1.08x, MRR 1.05x, hit rate 1.10x".
func Compare(candidate, baseline *Report) string {
	ratio := func(a, b float64) string {
		if b == 0 {
			if a == 0 {
				return "1.00x"
			}
			return "inf"
		}
		return fmt.Sprintf("%.2fx", a/b)
	}
	return fmt.Sprintf("candidate / baseline: recall %s, NDCG %s, MRR %s, hit rate %s",
		ratio(candidate.Recall, baseline.Recall), ratio(candidate.NDCG, baseline.NDCG),
		ratio(candidate.MRR, baseline.MRR), ratio(candidate.HitRate, baseline.HitRate))
}
