// Package admintest starts an engine with live operations, its admin API and its public
// API on loopback listeners, for tests and benchmarks of engine/admin and the CLI.
package admintest

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/podium-rank/podium/engine"
	"github.com/podium-rank/podium/engine/admin"
	"github.com/podium-rank/podium/engine/ann"
	"github.com/podium-rank/podium/engine/demo"
	"github.com/podium-rank/podium/engine/retrieval"
	"github.com/podium-rank/podium/engine/server"
)

// Token is the admin token of the started servers.
const Token = "test-token-123"

// Env is a running engine with its servers. Everything is closed by the test's cleanup.
type Env struct {
	Engine    *engine.Engine
	Live      *engine.Live
	AdminURL  string // e.g. http://127.0.0.1:41234
	PublicURL string
}

// Options size the demo catalog of Start.
type Options struct {
	Items, Users, Dim int
}

// Start starts a small demo engine (2000 items, 100 users, 16 dimensions) with live
// operations configured by cfg (CanaryInterval defaults to off, Logger to discard).
func Start(t testing.TB, cfg engine.LiveConfig) *Env {
	return StartWith(t, cfg, Options{Items: 2000, Users: 100, Dim: 16})
}

// StartWith is Start with a catalog of the given size.
func StartWith(t testing.TB, cfg engine.LiveConfig, o Options) *Env {
	t.Helper()
	dc := demo.DefaultConfig()
	dc.Items, dc.Users, dc.Dim = o.Items, o.Users, o.Dim
	dc.Clusters = max(4, o.Items/50)
	e, err := engine.New(engine.Config{Dim: dc.Dim, HNSW: ann.HNSWConfig{M: 8, EfConstruction: 40}, Retrieval: retrieval.Config{ANN: 200, Popular: 20}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.LoadDemo(dc); err != nil {
		t.Fatal(err)
	}
	e.SetReady()
	if cfg.CanaryInterval == 0 {
		cfg.CanaryInterval = -1
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ShadowMinIdle == 0 && os.Getenv("PODIUM_BENCH") != "1" {
		cfg.ShadowMinIdle = -1 // tests run beside others: do not wait for an idle machine
	}
	lv, err := e.OpenLive(cfg)
	if err != nil {
		t.Fatal(err)
	}
	adm, err := admin.New(lv, admin.Config{Token: Token})
	if err != nil {
		t.Fatal(err)
	}
	aln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pub := server.New(e, server.Config{})
	go adm.Serve(aln)
	go pub.Serve(pln)
	t.Cleanup(func() {
		adm.Shutdown()
		pub.Shutdown()
		lv.Close()
		e.Close()
	})
	return &Env{Engine: e, Live: lv, AdminURL: "http://" + aln.Addr().String(), PublicURL: "http://" + pln.Addr().String()}
}

// Rank posts a /v1/rank request for user (k 10) to the public API and returns the body;
// it fails the test unless the answer is 200.
func (env *Env) Rank(t testing.TB, user string) string {
	t.Helper()
	resp, err := http.Post(env.PublicURL+"/v1/rank", "application/json", strings.NewReader(`{"user_id":"`+user+`","k":10}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("rank: %d %s", resp.StatusCode, b)
	}
	return string(b)
}
