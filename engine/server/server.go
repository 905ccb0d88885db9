// Package server exposes an Engine over HTTP with fasthttp: POST /v1/rank, the bulk catalog
// routes and the health checks. Handlers decode, call the engine and encode; no ranking
// logic lives here.
package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bytedance/sonic"
	"github.com/valyala/fasthttp"

	"github.com/podium-rank/podium/engine"
	"github.com/podium-rank/podium/engine/ann"
	"github.com/podium-rank/podium/engine/catalog"
	"github.com/podium-rank/podium/engine/events"
	"github.com/podium-rank/podium/engine/pipeline"
)

// Config configures a Server. Zero values get the defaults.
type Config struct {
	// MaxRankBody bounds a /v1/rank body in bytes (default 1 MiB); larger ones get 413.
	MaxRankBody int
	// MaxBulkBody bounds a bulk NDJSON body in bytes (default 1 GiB); larger ones get 413.
	MaxBulkBody int64
	// MaxEventsBody bounds a /v1/events body in bytes (default 16 MiB); larger ones get 413.
	MaxEventsBody int
	// ReadTimeout and WriteTimeout bound slow clients (defaults 30 s and 30 s).
	ReadTimeout, WriteTimeout time.Duration
	// Concurrency bounds concurrent connections (default 64k).
	Concurrency int
	// MaxRanking bounds the /v1/rank requests ranking at once (default GOMAXPROCS); the
	// others wait their turn. Ranking is CPU-bound, so running more at once than there are
	// cores only interleaves them: every request gets slower and their working sets (ANN
	// visited sets, candidate lists) evict each other from the cache. RATIONALE.md, "Why
	// admit only as many rank requests as cores?".
	MaxRanking int
}

// Server serves one Engine. It is goroutine-safe.
type Server struct {
	e     *engine.Engine
	cfg   Config
	srv   *fasthttp.Server
	pool  sync.Pool
	slots chan struct{}
}

// New returns a server for e.
func New(e *engine.Engine, cfg Config) *Server {
	if cfg.MaxRankBody <= 0 {
		cfg.MaxRankBody = 1 << 20
	}
	if cfg.MaxBulkBody <= 0 {
		cfg.MaxBulkBody = 1 << 30
	}
	if cfg.MaxEventsBody <= 0 {
		cfg.MaxEventsBody = 16 << 20
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 30 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	if cfg.MaxRanking <= 0 {
		cfg.MaxRanking = runtime.GOMAXPROCS(0)
	}
	s := &Server{e: e, cfg: cfg, slots: make(chan struct{}, cfg.MaxRanking)}
	s.pool.New = func() any { return &reqState{} }
	s.srv = &fasthttp.Server{
		Handler:               s.Handle,
		Name:                  "podium",
		MaxRequestBodySize:    cfg.MaxRankBody,
		StreamRequestBody:     true,
		ReadTimeout:           cfg.ReadTimeout,
		WriteTimeout:          cfg.WriteTimeout,
		Concurrency:           cfg.Concurrency,
		NoDefaultServerHeader: true,
		NoDefaultDate:         true,
		ErrorHandler:          errorHandler,
	}
	return s
}

// errorHandler answers requests fasthttp could not parse. Its default answers an oversized
// body with 400; Podium sends 413.
func errorHandler(ctx *fasthttp.RequestCtx, err error) {
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		writeError(ctx, fasthttp.StatusRequestEntityTooLarge, CodeTooLarge, "request body is too large")
		return
	}
	var te interface{ Timeout() bool }
	if errors.As(err, &te) && te.Timeout() {
		writeError(ctx, fasthttp.StatusRequestTimeout, "timeout", "request was not read in time")
		return
	}
	writeError(ctx, fasthttp.StatusBadRequest, CodeInvalidArgument, "malformed HTTP request: "+err.Error())
}

// Serve accepts connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.srv.Serve(ln) }

// Shutdown stops accepting connections and waits for requests in flight.
func (s *Server) Shutdown() error { return s.srv.Shutdown() }

// Handle routes one request.
func (s *Server) Handle(ctx *fasthttp.RequestCtx) {
	path := ctx.Path()
	switch {
	case bytes.Equal(path, []byte("/v1/rank")):
		if !allow(ctx, "POST") {
			return
		}
		s.rank(ctx)
	case bytes.Equal(path, []byte("/v1/items")):
		if !allow(ctx, "PUT") {
			return
		}
		s.bulk(ctx, s.e.LoadItems)
	case bytes.Equal(path, []byte("/v1/users")):
		if !allow(ctx, "PUT") {
			return
		}
		s.bulk(ctx, s.e.LoadUsers)
	case bytes.HasPrefix(path, []byte("/v1/items/")):
		if !allow(ctx, "DELETE") {
			return
		}
		s.deleteItem(ctx, string(path[len("/v1/items/"):]))
	case bytes.Equal(path, []byte("/v1/events")):
		if !allow(ctx, "POST") {
			return
		}
		s.events(ctx)
	case bytes.Equal(path, []byte("/livez")):
		if !allow(ctx, "GET") {
			return
		}
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"status":"ok"}` + "\n")
	case bytes.Equal(path, []byte("/readyz")):
		if !allow(ctx, "GET") {
			return
		}
		if !s.e.Ready() {
			writeError(ctx, fasthttp.StatusServiceUnavailable, CodeNotReady, "the catalog and index are still loading")
			return
		}
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"status":"ready"}` + "\n")
	case bytes.Equal(path, []byte("/metrics")):
		if !allow(ctx, "GET") {
			return
		}
		s.metrics(ctx)
	default:
		writeError(ctx, fasthttp.StatusNotFound, CodeNotFound, fmt.Sprintf("no route %s; see README.md for the API", path))
	}
}

// allow answers 405 unless the request's method is m (HEAD is allowed for GET routes).
func allow(ctx *fasthttp.RequestCtx, m string) bool {
	got := ctx.Method()
	if string(got) == m || m == "GET" && string(got) == "HEAD" {
		return true
	}
	ctx.Response.Header.Set("Allow", m)
	writeError(ctx, fasthttp.StatusMethodNotAllowed, CodeMethodNotAllowed,
		fmt.Sprintf("%s is not allowed on %s; use %s", got, ctx.Path(), m))
	return false
}

type rankJSON struct {
	UserID     string         `json:"user_id"`
	SessionID  string         `json:"session_id"`
	K          *float64       `json:"k"`
	Context    map[string]any `json:"context"`
	Exclude    []string       `json:"exclude"`
	Candidates *[]string      `json:"candidates"`
}

type reqState struct {
	body []byte
	req  engine.RankRequest
	keys []string
	out  []byte
}

var strict = sonic.Config{DisallowUnknownFields: true}.Froze()

// MaxContextKeys bounds the entries of a request's context.
const MaxContextKeys = 64

// decodeRank parses a /v1/rank body into req. It returns a message for the client on error.
func decodeRank(body []byte, st *reqState) string {
	var j rankJSON
	if len(bytes.TrimSpace(body)) == 0 {
		return "request body is empty; send a JSON object such as {\"user_id\":\"u1\",\"k\":20}"
	}
	if err := strict.Unmarshal(body, &j); err != nil {
		return "invalid JSON: " + trimErr(err)
	}
	req := &st.req
	req.Reset()
	req.UserID, req.SessionID = j.UserID, j.SessionID
	if j.K != nil {
		k := *j.K
		if k != float64(int(k)) {
			return fmt.Sprintf("k must be a whole number between 1 and %d", engine.MaxK)
		}
		if k < 1 || k > engine.MaxK {
			return fmt.Sprintf("k must be between 1 and %d", engine.MaxK)
		}
		req.K = int(k)
	}
	if len(j.Context) > MaxContextKeys {
		return fmt.Sprintf("context has %d keys; at most %d are allowed", len(j.Context), MaxContextKeys)
	}
	st.keys = st.keys[:0]
	for k := range j.Context {
		st.keys = append(st.keys, k)
	}
	sort.Strings(st.keys)
	for _, k := range st.keys {
		switch v := j.Context[k].(type) {
		case string:
			req.Context = append(req.Context, pipeline.ContextValue{Key: k, Str: v})
		case float64:
			req.Context = append(req.Context, pipeline.ContextValue{Key: k, Num: v, IsNum: true})
		default:
			return fmt.Sprintf("context.%s must be a string or a number; context is a flat map", k)
		}
	}
	for i, s := range j.Exclude {
		if s == "" {
			return fmt.Sprintf("exclude[%d] is an empty id", i)
		}
	}
	req.Exclude = append(req.Exclude, j.Exclude...)
	if j.Candidates != nil {
		req.HasCandidates = true
		for i, s := range *j.Candidates {
			if s == "" {
				return fmt.Sprintf("candidates[%d] is an empty id", i)
			}
		}
		req.Candidates = append(req.Candidates, *j.Candidates...)
	}
	return ""
}

func trimErr(err error) string {
	s := err.Error()
	for _, sep := range []string{"\n", `\n`} {
		if i := strings.Index(s, sep); i > 0 {
			s = s[:i]
		}
	}
	s = strings.TrimRight(strings.ReplaceAll(s, `"`, ""), " :")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// tooLarge answers 413 and closes the connection, since the unread rest of the body
// would otherwise be parsed as the next request.
func tooLarge(ctx *fasthttp.RequestCtx, msg string) {
	ctx.SetConnectionClose()
	writeError(ctx, fasthttp.StatusRequestEntityTooLarge, CodeTooLarge, msg)
}

// boundedBody returns the request body, reading a streamed one into st.body, or answers
// 400/413 and returns false.
func boundedBody(ctx *fasthttp.RequestCtx, st *reqState, limit int) ([]byte, bool) {
	body := ctx.PostBody()
	if ctx.Request.IsBodyStream() {
		// Bigger than the in-memory limit, or chunked: read at most one byte past the limit.
		var err error
		st.body, err = readAtMost(ctx.RequestBodyStream(), st.body[:0], limit+1)
		if err != nil {
			writeError(ctx, fasthttp.StatusBadRequest, CodeInvalidArgument, "cannot read request body: "+err.Error())
			return nil, false
		}
		body = st.body
	}
	if len(body) > limit {
		tooLarge(ctx, fmt.Sprintf("request body is larger than %d bytes", limit))
		return nil, false
	}
	return body, true
}

func (s *Server) rank(ctx *fasthttp.RequestCtx) {
	st := s.pool.Get().(*reqState)
	defer s.pool.Put(st)
	body, ok := boundedBody(ctx, st, s.cfg.MaxRankBody)
	if !ok {
		return
	}
	if !s.e.Ready() {
		writeError(ctx, fasthttp.StatusServiceUnavailable, CodeNotReady, "the catalog and index are still loading; retry when /readyz answers 200")
		return
	}
	if msg := decodeRank(body, st); msg != "" {
		writeError(ctx, fasthttp.StatusBadRequest, CodeInvalidArgument, msg)
		return
	}
	s.slots <- struct{}{}
	r, err := s.e.Rank(&st.req)
	<-s.slots
	if err != nil {
		var re *engine.RequestError
		if errors.As(err, &re) {
			writeError(ctx, fasthttp.StatusBadRequest, re.Code, re.Message)
			return
		}
		writeError(ctx, fasthttp.StatusInternalServerError, CodeInternal, err.Error())
		return
	}
	st.out = encodeRanking(st.out[:0], r)
	s.e.Release(r)
	ctx.SetContentType("application/json")
	ctx.SetBody(st.out)
}

// encodeRanking appends the JSON response for r.
func encodeRanking(b []byte, r *engine.Ranking) []byte {
	b = append(b, `{"request_id":"`...)
	b = append(b, r.RequestID...)
	b = append(b, `","items":[`...)
	for i := range r.List.IDs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = appendString(b, r.ItemID(i))
		b = append(b, `,"score":`...)
		b = appendFloat(b, r.List.Scores[i])
		b = append(b, '}')
	}
	b = append(b, `],"fallback":`...)
	b = appendBool(b, r.Result.FellBack)
	b = append(b, `,"took_us":`...)
	b = strconv.AppendInt(b, r.TookUS, 10)
	b = append(b, `,"retrieved":`...)
	b = strconv.AppendInt(b, int64(r.Retrieved), 10)
	if r.Variant != "" {
		b = append(b, `,"variant":`...)
		b = appendString(b, r.Variant)
	}
	b = append(b, `,"pipeline":[`...)
	for i, st := range r.Result.Stages {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"stage":`...)
		b = appendString(b, st.Name)
		b = append(b, `,"kind":`...)
		b = appendString(b, st.Kind.String())
		b = append(b, `,"plugin":`...)
		b = appendString(b, st.Plugin)
		b = append(b, `,"version":`...)
		b = appendString(b, st.Version)
		if st.Variant != "" {
			b = append(b, `,"variant":`...)
			b = appendString(b, st.Variant)
		}
		b = append(b, `,"fell_back":`...)
		b = appendBool(b, st.FellBack)
		if st.Error != "" {
			b = append(b, `,"error":`...)
			b = appendString(b, st.Error)
		}
		b = append(b, `,"took_us":`...)
		b = strconv.AppendInt(b, st.TookUS, 10)
		b = append(b, '}')
	}
	b = append(b, ']')
	if len(r.Warnings) > 0 {
		b = append(b, `,"warnings":[`...)
		for i, w := range r.Warnings {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, w)
		}
		b = append(b, ']')
	}
	return append(b, "}\n"...)
}

// readAtMost appends up to n bytes of r to dst.
func readAtMost(r io.Reader, dst []byte, n int) ([]byte, error) {
	for len(dst) < n {
		if cap(dst) == len(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		m, err := r.Read(dst[len(dst):min(cap(dst), n)])
		dst = dst[:len(dst)+m]
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// bodyReader returns the request body as a stream, bounded by limit.
func bodyReader(ctx *fasthttp.RequestCtx, limit int64) io.Reader {
	if ctx.Request.IsBodyStream() {
		return io.LimitReader(ctx.RequestBodyStream(), limit+1)
	}
	return bytes.NewReader(ctx.PostBody())
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (s *Server) bulk(ctx *fasthttp.RequestCtx, load func(io.Reader) (catalog.Report, error)) {
	if cl := ctx.Request.Header.ContentLength(); int64(cl) > s.cfg.MaxBulkBody {
		tooLarge(ctx, fmt.Sprintf("bulk body is larger than %d bytes; split it into several requests", s.cfg.MaxBulkBody))
		return
	}
	cr := &countingReader{r: bodyReader(ctx, s.cfg.MaxBulkBody)}
	rep, err := load(cr)
	if cr.n > s.cfg.MaxBulkBody {
		tooLarge(ctx, fmt.Sprintf("bulk body is larger than %d bytes; lines before the limit were applied (%d accepted)", s.cfg.MaxBulkBody, rep.Accepted))
		return
	}
	if err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, CodeInvalidArgument,
			fmt.Sprintf("%v (%d lines accepted before it)", err, rep.Accepted))
		return
	}
	if rep.Accepted == 0 && rep.Failed == 0 {
		writeError(ctx, fasthttp.StatusBadRequest, CodeInvalidArgument, "body has no NDJSON lines; send one JSON object per line")
		return
	}
	body, _ := sonic.Marshal(&rep)
	if rep.Accepted == 0 {
		// Nothing was applied: a client mistake, with the per-line report beside the error.
		msg, _ := sonic.Marshal(fmt.Sprintf("none of the %d lines was accepted; see errors", rep.Failed))
		body = append(append([]byte(`{"error":{"code":"invalid_argument","message":`), msg...), append([]byte(`},`), body[1:]...)...)
		ctx.SetStatusCode(fasthttp.StatusBadRequest)
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(append(body, '\n'))
}

func (s *Server) events(ctx *fasthttp.RequestCtx) {
	g := s.e.Events()
	if g == nil {
		writeError(ctx, fasthttp.StatusServiceUnavailable, CodeNotReady, "event ingestion is not open yet (the engine is loading)")
		return
	}
	st := s.pool.Get().(*reqState)
	defer s.pool.Put(st)
	body, ok := boundedBody(ctx, st, s.cfg.MaxEventsBody)
	if !ok {
		return
	}
	res, err := g.Ingest(body, time.Now())
	switch {
	case errors.Is(err, events.ErrTooManyEvents):
		tooLarge(ctx, err.Error())
		return
	case errors.Is(err, events.ErrEmptyBody), errors.Is(err, events.ErrBadBody):
		writeError(ctx, fasthttp.StatusBadRequest, CodeInvalidArgument, trimErr(err)+`; send a JSON array or NDJSON of events such as {"type":"click","user_id":"u1","item_id":"i9"}`)
		return
	case err != nil:
		writeError(ctx, fasthttp.StatusServiceUnavailable, "unavailable", "events were not accepted: "+err.Error())
		return
	}
	ctx.SetContentType("application/json")
	if res.Accepted == 0 && res.Rejected > 0 {
		// Nothing was applied: a client mistake, with the per-event report beside it.
		b := appendString(append(st.out[:0], `{"error":{"code":"invalid_argument","message":`...),
			fmt.Sprintf("none of the %d events was accepted; see errors", res.Rejected))
		b = append(b, "},"...)
		rep := res.AppendJSON(nil)
		st.out = append(append(b, rep[1:]...), '\n')
		ctx.SetStatusCode(fasthttp.StatusBadRequest)
		ctx.SetBody(st.out)
		return
	}
	st.out = append(res.AppendJSON(st.out[:0]), '\n')
	ctx.SetStatusCode(fasthttp.StatusAccepted)
	ctx.SetBody(st.out)
}

func (s *Server) deleteItem(ctx *fasthttp.RequestCtx, id string) {
	if id == "" {
		writeError(ctx, fasthttp.StatusBadRequest, CodeInvalidArgument, "item id is empty; use DELETE /v1/items/{id}")
		return
	}
	if err := s.e.DeleteItem(id); err != nil {
		if errors.Is(err, catalog.ErrUnknownItem) {
			writeError(ctx, fasthttp.StatusNotFound, CodeNotFound, fmt.Sprintf("no item %q", id))
			return
		}
		writeError(ctx, fasthttp.StatusBadRequest, CodeInvalidArgument, err.Error())
		return
	}
	ctx.SetContentType("application/json")
	b := appendString([]byte(`{"deleted":`), id)
	ctx.SetBody(append(b, "}\n"...))
}

func (s *Server) metrics(ctx *fasthttp.RequestCtx) {
	c := s.e.Counters()
	b := []byte("# TYPE podium_rank_requests_total counter\npodium_rank_requests_total ")
	b = strconv.AppendUint(b, c.Requests.Load(), 10)
	b = append(b, "\n# TYPE podium_rank_fallbacks_total counter\npodium_rank_fallbacks_total "...)
	b = strconv.AppendUint(b, c.FellBack.Load(), 10)
	b = append(b, "\n# TYPE podium_items_upserted_total counter\npodium_items_upserted_total "...)
	b = strconv.AppendUint(b, c.ItemsUpserted.Load(), 10)
	b = append(b, "\n# TYPE podium_items_failed_total counter\npodium_items_failed_total "...)
	b = strconv.AppendUint(b, c.ItemsFailed.Load(), 10)
	b = append(b, "\n# TYPE podium_catalog_items gauge\npodium_catalog_items "...)
	b = strconv.AppendInt(b, int64(s.e.Catalog().LiveItems()), 10)
	b = append(b, '\n')
	if idx, ok := s.e.Index().(interface{ Stats() ann.Stats }); ok {
		st := idx.Stats()
		b = fmt.Appendf(b, "# TYPE podium_ann_items gauge\npodium_ann_items{state=\"live\"} %d\npodium_ann_items{state=\"deleted\"} %d\n", st.Live, st.Deleted)
		b = fmt.Appendf(b, "# TYPE podium_ann_bytes gauge\npodium_ann_bytes %d\n", st.Bytes)
		b = fmt.Appendf(b, "# TYPE podium_ann_compactions_total counter\npodium_ann_compactions_total %d\n", st.Compactions)
		b = fmt.Appendf(b, "# TYPE podium_ann_reclaimed_total counter\npodium_ann_reclaimed_total %d\n", st.Reclaimed)
	}
	if g := s.e.Events(); g != nil {
		m := g.Metrics(time.Now())
		b = append(b, "# TYPE podium_events_total counter\n"...)
		for _, tc := range m.ByType {
			b = fmt.Appendf(b, "podium_events_total{type=%q,result=\"accepted\"} %d\n", tc.Type, tc.Accepted)
			b = fmt.Appendf(b, "podium_events_total{type=%q,result=\"rejected\"} %d\n", tc.Type, tc.Rejected)
		}
		b = fmt.Appendf(b, "# TYPE podium_event_ingest_lag_seconds gauge\npodium_event_ingest_lag_seconds{quantile=\"0.5\"} %g\npodium_event_ingest_lag_seconds{quantile=\"0.99\"} %g\n",
			m.LagP50.Seconds(), m.LagP99.Seconds())
		b = fmt.Appendf(b, "# TYPE podium_feature_staleness_seconds gauge\npodium_feature_staleness_seconds{what=\"since_last_apply\"} %g\npodium_feature_staleness_seconds{what=\"newest_event_age\"} %g\n",
			m.SinceLastApply.Seconds(), m.NewestEventAge.Seconds())
	}
	if lv := s.e.Live(); lv != nil {
		b = lv.AppendMetrics(b)
	}
	ctx.SetContentType("text/plain; version=0.0.4")
	ctx.SetBody(b)
}
