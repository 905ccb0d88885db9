// Package admin serves the engine's live plugin operations over HTTP on a listener of its
// own, every route behind a bearer token: push, list, inspect and delete plugin versions,
// change, roll back and compare stages.
//
// Routes (JSON bodies; errors are {"error":{"code","message"}} with a 4xx or 5xx status):
//
//	POST   /admin/plugins                  body: the .wasm; 201 (or 200 if already stored)
//	GET    /admin/plugins                  stored versions, newest first
//	GET    /admin/plugins/{version}        one version (a unique prefix of 6+ hex digits works)
//	DELETE /admin/plugins/{version}        only when no stage uses it (else 409)
//	GET    /admin/stages                   the live pipeline with per-variant statistics
//	GET    /admin/stages/{stage}           one stage
//	PUT    /admin/stages/{stage}           body: engine.StageUpdate (champion, challengers...)
//	POST   /admin/stages/{stage}/rollback  back to the previous champion
//	GET    /admin/compare/{stage}          champion vs challengers statistics
//	GET    /admin/events?n=100             the operations log (pushes, swaps, rollbacks)
//	GET    /admin/metrics                  Prometheus text of the live operations
//
// See RATIONALE.md, "Why a separate admin listener with a bearer token?".
package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/podium-rank/podium/engine"
	"github.com/podium-rank/podium/engine/plugin"
	"github.com/podium-rank/podium/engine/registry"
)

// Error codes of error bodies. They are stable: clients may switch on them.
const (
	CodeUnauthorized     = "unauthorized"
	CodeInvalidArgument  = "invalid_argument"
	CodeInvalidPlugin    = "invalid_plugin"
	CodeNotFound         = "not_found"
	CodeConflict         = "conflict"
	CodeInUse            = "in_use"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeTooLarge         = "payload_too_large"
	CodeInternal         = "internal"
)

// CallerHeader names the person or system making a change; it is recorded in the
// registry's events. Without it the caller is "admin".
const CallerHeader = "X-Podium-Caller"

// Config configures a Server.
type Config struct {
	// Token is the bearer token every request must present. Empty requires Insecure.
	Token string
	// Insecure serves without a token. It is only allowed on a loopback address (see
	// CheckListen).
	Insecure bool
	// MaxWasmBytes bounds an upload (default 64 MiB).
	MaxWasmBytes int
	// OpTimeout bounds one change (compiling, starting and warming plugins; default 2m).
	OpTimeout time.Duration
}

// ErrNoToken is returned when the admin API would run without a token outside of an
// explicitly insecure loopback setup.
var ErrNoToken = errors.New("admin: no token: set --admin-token (or PODIUM_ADMIN_TOKEN), or use --admin-insecure on a loopback address")

// CheckListen validates cfg for listening on addr: a token is required unless Insecure is
// set and addr is a loopback address (127.0.0.0/8, ::1 or localhost).
func CheckListen(addr string, cfg Config) error {
	if cfg.Token != "" {
		return nil
	}
	if !cfg.Insecure {
		return ErrNoToken
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("admin: bad address %q: %v", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("admin: --admin-insecure is only allowed on a loopback address, not %q", addr)
}

// Server serves the admin API of one Live. It is goroutine-safe.
type Server struct {
	lv       *engine.Live
	cfg      Config
	tokenSum [32]byte
	srv      *fasthttp.Server
}

// New returns the admin server of lv. It fails with ErrNoToken without a token unless
// cfg.Insecure.
func New(lv *engine.Live, cfg Config) (*Server, error) {
	if cfg.Token == "" && !cfg.Insecure {
		return nil, ErrNoToken
	}
	if cfg.MaxWasmBytes <= 0 {
		cfg.MaxWasmBytes = 64 << 20
	}
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = 2 * time.Minute
	}
	s := &Server{lv: lv, cfg: cfg, tokenSum: sha256.Sum256([]byte(cfg.Token))}
	s.srv = &fasthttp.Server{
		Handler:               s.Handle,
		Name:                  "podium-admin",
		MaxRequestBodySize:    cfg.MaxWasmBytes + 1,
		ReadTimeout:           time.Minute,
		WriteTimeout:          time.Minute,
		NoDefaultServerHeader: true,
		ErrorHandler: func(ctx *fasthttp.RequestCtx, err error) {
			if errors.Is(err, fasthttp.ErrBodyTooLarge) {
				writeError(ctx, fasthttp.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("the body is larger than %d bytes", cfg.MaxWasmBytes))
				return
			}
			writeError(ctx, fasthttp.StatusBadRequest, CodeInvalidArgument, "malformed HTTP request: "+err.Error())
		},
	}
	return s, nil
}

// Serve accepts connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.srv.Serve(ln) }

// Shutdown stops accepting connections and waits for requests in flight.
func (s *Server) Shutdown() error { return s.srv.Shutdown() }

// authorized checks the bearer token in constant time (both sides hashed, so the length
// does not leak either).
func (s *Server) authorized(ctx *fasthttp.RequestCtx) bool {
	if s.cfg.Token == "" {
		return s.cfg.Insecure
	}
	h := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)
	tok, ok := bytes.CutPrefix(h, []byte("Bearer "))
	if !ok {
		return false
	}
	sum := sha256.Sum256(bytes.TrimSpace(tok))
	return subtle.ConstantTimeCompare(sum[:], s.tokenSum[:]) == 1
}

// caller returns who makes the request: the X-Podium-Caller header (printable, at most 64
// bytes), else "admin".
func caller(ctx *fasthttp.RequestCtx) string {
	c := strings.TrimSpace(string(ctx.Request.Header.Peek(CallerHeader)))
	if c == "" || len(c) > 64 {
		return "admin"
	}
	for i := 0; i < len(c); i++ {
		if c[i] < ' ' || c[i] > '~' {
			return "admin"
		}
	}
	return c
}

// Handle routes one request. Authentication comes first, so that nothing, not even which
// routes exist, is visible without the token.
func (s *Server) Handle(ctx *fasthttp.RequestCtx) {
	if !s.authorized(ctx) {
		ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="podium-admin"`)
		writeError(ctx, fasthttp.StatusUnauthorized, CodeUnauthorized, "missing or wrong bearer token; send Authorization: Bearer <token>")
		return
	}
	path := string(ctx.Path())
	rest, ok := strings.CutPrefix(path, "/admin/")
	if !ok {
		writeError(ctx, fasthttp.StatusNotFound, CodeNotFound, "no route "+path)
		return
	}
	parts := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	method := string(ctx.Method())
	switch {
	case len(parts) == 1 && parts[0] == "plugins":
		switch method {
		case "POST":
			s.push(ctx)
		case "GET", "HEAD":
			writeJSON(ctx, 200, map[string]any{"plugins": nonNil(s.lv.Plugins())})
		default:
			notAllowed(ctx, "GET, POST")
		}
	case len(parts) == 2 && parts[0] == "plugins":
		switch method {
		case "GET", "HEAD":
			p, err := s.lv.Plugin(parts[1])
			s.answer(ctx, 200, p, err)
		case "DELETE":
			p, err := s.lv.DeletePlugin(context.Background(), parts[1], caller(ctx))
			s.answer(ctx, 200, map[string]any{"deleted": p}, err)
		default:
			notAllowed(ctx, "GET, DELETE")
		}
	case len(parts) == 1 && parts[0] == "stages":
		if !allow(ctx, method, "GET") {
			return
		}
		writeJSON(ctx, 200, map[string]any{"stages": nonNil(s.lv.Stages())})
	case len(parts) == 2 && parts[0] == "stages":
		switch method {
		case "GET", "HEAD":
			st, err := s.lv.Stage(parts[1])
			s.answer(ctx, 200, st, err)
		case "PUT":
			s.setStage(ctx, parts[1])
		default:
			notAllowed(ctx, "GET, PUT")
		}
	case len(parts) == 3 && parts[0] == "stages" && parts[2] == "rollback":
		if !allow(ctx, method, "POST") {
			return
		}
		opCtx, cancel := context.WithTimeout(context.Background(), s.cfg.OpTimeout)
		defer cancel()
		st, err := s.lv.Rollback(opCtx, parts[1], caller(ctx))
		s.answer(ctx, 200, st, err)
	case len(parts) == 2 && parts[0] == "compare":
		if !allow(ctx, method, "GET") {
			return
		}
		cs, err := s.lv.Compare(parts[1])
		s.answer(ctx, 200, cs, err)
	case len(parts) == 1 && parts[0] == "events":
		if !allow(ctx, method, "GET") {
			return
		}
		n := 100
		if q := ctx.QueryArgs().Peek("n"); len(q) > 0 {
			v, err := strconv.Atoi(string(q))
			if err != nil || v < 0 {
				writeError(ctx, 400, CodeInvalidArgument, "n must be a non-negative whole number (0 for all)")
				return
			}
			n = v
		}
		writeJSON(ctx, 200, map[string]any{"events": nonNil(s.lv.Events(n))})
	case len(parts) == 1 && parts[0] == "metrics":
		if !allow(ctx, method, "GET") {
			return
		}
		ctx.SetContentType("text/plain; version=0.0.4")
		ctx.SetBody(s.lv.AppendMetrics(nil))
	default:
		writeError(ctx, fasthttp.StatusNotFound, CodeNotFound, "no route "+path+"; see engine/admin's package doc for the routes")
	}
}

// PushResult is the answer to POST /admin/plugins: the stored plugin (name, version,
// manifest...) and whether it was already stored.
type PushResult struct {
	engine.PluginStatus
	Existed bool `json:"existed"`
}

func (s *Server) push(ctx *fasthttp.RequestCtx) {
	opCtx, cancel := context.WithTimeout(context.Background(), s.cfg.OpTimeout)
	defer cancel()
	p, existed, err := s.lv.Push(opCtx, ctx.PostBody(), caller(ctx))
	if errors.Is(err, registry.ErrInvalid) {
		writeError(ctx, fasthttp.StatusUnprocessableEntity, CodeInvalidPlugin, err.Error())
		return
	}
	if err != nil {
		s.answer(ctx, 0, nil, err)
		return
	}
	ps, err := s.lv.Plugin(p.Version)
	if err != nil {
		ps = engine.PluginStatus{Plugin: p}
	}
	status := fasthttp.StatusCreated
	if existed {
		status = fasthttp.StatusOK
	}
	writeJSON(ctx, status, PushResult{PluginStatus: ps, Existed: existed})
}

func (s *Server) setStage(ctx *fasthttp.RequestCtx, name string) {
	var u engine.StageUpdate
	dec := json.NewDecoder(bytes.NewReader(ctx.PostBody()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&u); err != nil {
		writeError(ctx, 400, CodeInvalidArgument, "invalid JSON: "+err.Error()+`; send e.g. {"champion":{"version":"3f2a9c...","params":{}}}`)
		return
	}
	if u.Champion == nil && u.Challengers == nil && u.Deadline == nil && u.Fallback == nil && u.Cut == nil && u.Salt == nil {
		writeError(ctx, 400, CodeInvalidArgument, "the update changes nothing; give champion, challengers, deadline, fallback, cut or salt")
		return
	}
	opCtx, cancel := context.WithTimeout(context.Background(), s.cfg.OpTimeout)
	defer cancel()
	st, err := s.lv.SetStage(opCtx, name, u, caller(ctx))
	s.answer(ctx, 200, st, err)
}

// answer writes v with status, or the error mapped to its status and code.
func (s *Server) answer(ctx *fasthttp.RequestCtx, status int, v any, err error) {
	if err == nil {
		writeJSON(ctx, status, v)
		return
	}
	switch {
	case errors.Is(err, registry.ErrNotFound):
		writeError(ctx, fasthttp.StatusNotFound, CodeNotFound, err.Error())
	case errors.Is(err, registry.ErrAmbiguous):
		writeError(ctx, fasthttp.StatusBadRequest, CodeInvalidArgument, err.Error())
	case errors.Is(err, registry.ErrInUse):
		writeError(ctx, fasthttp.StatusConflict, CodeInUse, err.Error())
	case errors.Is(err, registry.ErrConflict):
		writeError(ctx, fasthttp.StatusConflict, CodeConflict, err.Error())
	case errors.Is(err, registry.ErrInvalid), errors.Is(err, plugin.ErrInvalid):
		writeError(ctx, fasthttp.StatusBadRequest, CodeInvalidArgument, err.Error())
	case errors.Is(err, engine.ErrLiveClosed):
		writeError(ctx, fasthttp.StatusServiceUnavailable, CodeInternal, err.Error())
	default:
		writeError(ctx, fasthttp.StatusInternalServerError, CodeInternal, err.Error())
	}
}

func allow(ctx *fasthttp.RequestCtx, method, want string) bool {
	if method == want || want == "GET" && method == "HEAD" {
		return true
	}
	notAllowed(ctx, want)
	return false
}

func notAllowed(ctx *fasthttp.RequestCtx, allowed string) {
	ctx.Response.Header.Set("Allow", allowed)
	writeError(ctx, fasthttp.StatusMethodNotAllowed, CodeMethodNotAllowed,
		fmt.Sprintf("%s is not allowed on %s; use %s", ctx.Method(), ctx.Path(), allowed))
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// ErrorBody is the JSON body of every error answer.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(ctx *fasthttp.RequestCtx, status int, code, msg string) {
	var b ErrorBody
	b.Error.Code, b.Error.Message = code, msg
	writeJSON(ctx, status, b)
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		status = fasthttp.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":{"code":"internal","message":"cannot encode the answer"}}` + "\n")
	}
	ctx.SetContentType("application/json")
	ctx.SetStatusCode(status)
	ctx.SetBody(buf.Bytes())
}
