package loadgen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// BaselinePath is the only path BaselineHandler answers.
const BaselinePath = "/v1/rank"

// baselineBody is computed once: a top-20 response of the same shape and about the same
// size as Podium's POST /v1/rank answer, with ids from the demo catalog (i0..i99999).
var baselineBody = buildBaselineBody()

func buildBaselineBody() []byte {
	rng := rand.New(rand.NewPCG(20, 26))
	b := []byte(`{"request_id":"0123456789abcdef","items":[`)
	score := 0.99
	for k := range 20 {
		if k > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":"i`...)
		b = strconv.AppendInt(b, int64(rng.IntN(100000)), 10)
		b = append(b, `","score":`...)
		b = strconv.AppendFloat(b, score, 'f', 4, 64)
		b = append(b, '}')
		score -= 0.01 + 0.02*rng.Float64()
	}
	return append(b, `],"fallback":false,"took_us":5}`...)
}

// BaselineBody returns a copy of the precomputed body BaselineHandler sends.
func BaselineBody() []byte { return append([]byte(nil), baselineBody...) }

// BaselineHandler is the "bare fasthttp" baseline that the engine is compared against:
// POST /v1/rank answers 200 with a precomputed top-20 JSON body of the engine's response
// shape, without reading the request body; other methods get 405 and other paths 404.
// It is goroutine-safe and does not allocate.
func BaselineHandler(ctx *fasthttp.RequestCtx) {
	if string(ctx.Path()) != BaselinePath {
		ctx.SetStatusCode(fasthttp.StatusNotFound)
		return
	}
	if !ctx.IsPost() {
		ctx.SetStatusCode(fasthttp.StatusMethodNotAllowed)
		return
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(baselineBody)
}

// StartServer serves h with a default fasthttp.Server on a TCP listener at addr (use
// "127.0.0.1:0" for a free port) and returns the address it listens on and a function
// that shuts the server down, waiting up to 5 s for open connections to go idle; calling
// stop again returns the first result. The server runs on its own goroutines until stop
// is called.
func StartServer(addr string, h fasthttp.RequestHandler) (bound string, stop func() error, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	srv := &fasthttp.Server{Handler: h}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	stop = sync.OnceValue(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := srv.ShutdownWithContext(ctx)
		if serr := <-served; err == nil {
			err = serr
		}
		return err
	})
	return ln.Addr().String(), stop, nil
}

// RunBaseline starts BaselineHandler in-process on 127.0.0.1:0, runs cfg against its
// BaselinePath (cfg.URL is overwritten; an empty cfg.Name becomes "baseline") and stops
// the server. Use it beside a run against the engine to compare the two in one process run.
func RunBaseline(ctx context.Context, cfg Config) (*Report, error) {
	addr, stop, err := StartServer("127.0.0.1:0", BaselineHandler)
	if err != nil {
		return nil, err
	}
	cfg.URL = "http://" + addr + BaselinePath
	if cfg.Name == "" {
		cfg.Name = "baseline"
	}
	rep, err := Run(ctx, cfg)
	if serr := stop(); err == nil && serr != nil {
		err = fmt.Errorf("cannot stop baseline server: %w", serr)
	}
	return rep, err
}
