// Command engine runs the Podium ranking engine.
//
//	engine --demo                      serve the built-in demo catalog on 127.0.0.1:8080
//	engine --items items.ndjson --users users.ndjson --addr :8080
//	engine plugin push|ls|activate|rollback|shadow|split ...   live plugin operations (engine plugin -h)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/podium-rank/podium/engine"
	"github.com/podium-rank/podium/engine/admin"
	"github.com/podium-rank/podium/engine/admin/cli"
	"github.com/podium-rank/podium/engine/demo"
	"github.com/podium-rank/podium/engine/events"
	"github.com/podium-rank/podium/engine/events/kafka"
	"github.com/podium-rank/podium/engine/events/wal"
	"github.com/podium-rank/podium/engine/server"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) > 0 && args[0] == "plugin" {
		return cli.Main(args[1:], os.Stdout, os.Stderr)
	}
	if len(args) > 0 && args[0] == "eval" {
		return runEval(args[1:], os.Stdout, os.Stderr)
	}
	fs := flag.NewFlagSet("engine", flag.ContinueOnError)
	var (
		addr      = fs.String("addr", "127.0.0.1:8080", "listen address for the public API")
		demoMode  = fs.Bool("demo", false, "generate and serve the built-in demo catalog (100k items, 10k users)")
		items     = fs.String("items", "", "NDJSON file of items to load at start")
		users     = fs.String("users", "", "NDJSON file of users to load at start")
		dim       = fs.Int("dim", 0, "embedding dimension (default: taken from --items)")
		index     = fs.String("index", "hnsw", "ANN index: hnsw (items come and go all day), ivf (fastest for 1000+ candidates), flat (exact) or none")
		metric    = fs.String("metric", "cosine", "similarity: cosine or dot")
		efSearch  = fs.Int("ef-search", 0, "HNSW search beam width (default 100; never below the candidates asked)")
		compactAt = fs.Float64("hnsw-compact-at", 0, "share of HNSW nodes that may be tombstones (deleted items) before the graph is repaired in place (default 0.25; negative: never)")
		annCands  = fs.Int("ann-candidates", 500, "candidates retrieved from the ANN index per request")
		popCands  = fs.Int("popular-candidates", 50, "popular items added to each personalised request")
		affAttr   = fs.String("affinity-attribute", "category", "item attribute whose values measure the session's interest (affinity_score, and popular items of those values as candidates); \"-\" for none")
		demoItems = fs.Int("demo-items", 0, "items in the demo catalog (default 100000)")
		dataDir   = fs.String("data-dir", "podium-data", "directory for the event write-ahead log and checkpoints (\"\" keeps events in memory only)")
		fsync     = fs.String("fsync", "always", "event log fsync policy: always (before the 202), interval (every 10ms) or none")
		ckEvery   = fs.Duration("checkpoint-interval", time.Minute, "how often event state is checkpointed (bounds WAL replay and Kafka catch-up at start)")
		kBrokers  = fs.String("kafka-brokers", "", "comma-separated Kafka seed brokers; when set, events are also consumed from --kafka-topic")
		kTopic    = fs.String("kafka-topic", "podium-events", "Kafka topic of events (same JSON as POST /v1/events)")
		kStart    = fs.String("kafka-start", "earliest", "where a partition without a saved offset starts: earliest or latest")
		pipeFile  = fs.String("pipeline", "", "pipeline config (JSON): stages, plugins, params, deadlines, fallbacks; \"native\" for the built-in blend (default: the native blend, or with --demo "+engine.DemoPipeline+")")
		wasmCache = fs.String("wasm-cache", "", "directory of the Wasm compilation cache (default <data-dir>/wasm-cache)")
		regDir    = fs.String("registry-dir", "", "directory of the plugin registry: versions and the live pipeline (default <data-dir>/registry)")
		adminAddr = fs.String("admin-addr", "127.0.0.1:8081", "listen address of the admin API (live plugin operations); \"\" disables it")
		adminTok  = fs.String("admin-token", "", "bearer token of the admin API (default $PODIUM_ADMIN_TOKEN); without one the admin API stays off")
		adminOpen = fs.Bool("admin-insecure", false, "serve the admin API without a token; only allowed on a loopback --admin-addr")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	dimSet := false
	fs.Visit(func(f *flag.Flag) { dimSet = dimSet || f.Name == "dim" })
	acfg := admin.Config{Token: *adminTok, Insecure: *adminOpen}
	if acfg.Token == "" {
		acfg.Token = os.Getenv("PODIUM_ADMIN_TOKEN")
	}
	if err := admin.CheckListen(*adminAddr, acfg); *adminAddr != "" && err != nil && !errors.Is(err, admin.ErrNoToken) {
		fmt.Fprintln(os.Stderr, "engine:", err)
		return 2
	}
	ecfg := events.DefaultConfig()
	switch *fsync {
	case "always":
		ecfg.Sync = wal.SyncAlways
	case "interval":
		ecfg.Sync = wal.SyncInterval
	case "none":
		ecfg.Sync = wal.SyncNone
	default:
		fmt.Fprintf(os.Stderr, "engine: --fsync must be always, interval or none, not %q\n", *fsync)
		return 2
	}
	ecfg.CheckpointInterval = *ckEvery
	cfg := engine.Config{Dim: *dim, Index: *index, Metric: *metric, WasmCacheDir: *wasmCache}
	if cfg.WasmCacheDir == "" && *dataDir != "" {
		cfg.WasmCacheDir = filepath.Join(*dataDir, "wasm-cache")
	}
	cfg.HNSW.EfSearch = *efSearch
	cfg.HNSW.CompactAt = *compactAt
	cfg.Retrieval.ANN, cfg.Retrieval.Popular = *annCands, *popCands
	cfg.AffinityAttribute = *affAttr
	dcfg := demo.DefaultConfig()
	if *demoItems > 0 {
		dcfg.Items = *demoItems
	}
	switch {
	case *demoMode:
		cfg.Dim = dcfg.Dim
	case *items == "" && !dimSet:
		fmt.Fprintln(os.Stderr, "engine: give --demo, --items FILE, or --dim N to start with an empty catalog fed by PUT /v1/items (--dim 0: items without embeddings; see README.md)")
		return 2
	case *items == "":
		log.Printf("engine: starting with an empty catalog (dimension %d); load items with PUT /v1/items", cfg.Dim)
	case cfg.Dim == 0:
		d, err := engine.SniffDim(*items)
		if err != nil {
			fmt.Fprintln(os.Stderr, "engine:", err)
			return 1
		}
		cfg.Dim = d
	}
	e, err := engine.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "engine: cannot listen:", err)
		return 1
	}
	srv := server.New(e, server.Config{})
	go func() {
		if err := srv.Serve(ln); err != nil {
			log.Printf("engine: serve: %v", err)
		}
	}()
	log.Printf("engine: listening on http://%s (ready after loading; see /readyz)", ln.Addr())

	t0 := time.Now()
	// With --demo, build the demo plugins while the catalog loads.
	demoBuilt := make(chan error, 1)
	if *demoMode && *pipeFile == "" {
		go func() { demoBuilt <- engine.BuildPipelinePlugins(".", engine.DemoPipeline) }()
	} else {
		demoBuilt <- nil
	}
	if *demoMode {
		if err := e.LoadDemo(dcfg); err != nil {
			log.Printf("engine: %v", err)
			return 1
		}
	}
	for _, f := range []struct {
		path  string
		users bool
	}{{*items, false}, {*users, true}} {
		if f.path == "" {
			continue
		}
		rep, err := e.LoadFile(f.path, f.users)
		if err != nil {
			log.Printf("engine: %v", err)
			return 1
		}
		log.Printf("engine: %s: %d lines accepted, %d failed", f.path, rep.Accepted, rep.Failed)
		for _, le := range rep.Errors {
			log.Printf("engine: %s:%d: %s", f.path, le.Line, le.Error)
		}
	}
	if err := e.OpenEvents(*dataDir, ecfg); err != nil {
		log.Printf("engine: %v", err)
		return 1
	}
	defer e.Close()
	if err := <-demoBuilt; err != nil {
		log.Printf("engine: cannot build the demo plugins, serving the native blend instead: %v", err)
	} else if *demoMode && *pipeFile == "" {
		*pipeFile = engine.DemoPipeline
	}
	native := *pipeFile == "native"
	if native {
		*pipeFile = ""
	}
	lcfg := engine.LiveConfig{RegistryDir: *regDir, SeedFile: *pipeFile, SeedNative: native}
	if lcfg.RegistryDir == "" && *dataDir != "" {
		lcfg.RegistryDir = filepath.Join(*dataDir, "registry")
	}
	t1 := time.Now()
	lv, err := e.OpenLive(lcfg)
	if err != nil && *pipeFile == engine.DemoPipeline {
		log.Printf("engine: cannot load the demo plugins, serving the native blend instead: %v", err)
		lcfg.SeedFile = ""
		lv, err = e.OpenLive(lcfg)
	}
	if err != nil {
		log.Printf("engine: %v", err)
		return 1
	}
	defer lv.Close() // runs before e.Close
	log.Printf("engine: pipeline of %d stages ready in %v (registry %q)", len(lv.Stages()), time.Since(t1).Round(time.Millisecond), lcfg.RegistryDir)
	if *adminAddr != "" && admin.CheckListen(*adminAddr, acfg) == nil {
		adm, _ := admin.New(lv, acfg)
		aln, err := net.Listen("tcp", *adminAddr)
		if err != nil {
			log.Printf("engine: cannot listen for the admin API: %v", err)
			return 1
		}
		go func() {
			if err := adm.Serve(aln); err != nil {
				log.Printf("engine: admin: %v", err)
			}
		}()
		defer adm.Shutdown()
		log.Printf("engine: admin API on http://%s (engine plugin -h)", aln.Addr())
	} else if *adminAddr != "" {
		log.Printf("engine: admin API off: no token (set --admin-token or PODIUM_ADMIN_TOKEN)")
	}
	if *kBrokers != "" {
		con, err := kafka.New(kafka.Config{Brokers: strings.Split(*kBrokers, ","), Topic: *kTopic, StartAt: *kStart}, e.Events())
		if err != nil {
			log.Printf("engine: %v", err)
			return 1
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			if err := con.Run(ctx); err != nil {
				log.Printf("engine: kafka: %v", err)
			}
		}()
		defer func() { cancel(); con.Close() }() // runs before e.Close: stop consuming, then checkpoint
		log.Printf("engine: consuming events from kafka topic %q", *kTopic)
	}
	e.SetReady()
	stop := make(chan struct{})
	go e.RefreshLoop(time.Second, stop)
	log.Printf("engine: ready: %d items, loaded in %v; try: curl -s -XPOST %s/v1/rank -d '{\"user_id\":\"u1\",\"k\":10}'",
		e.Catalog().LiveItems(), time.Since(t0).Round(time.Millisecond), "http://"+ln.Addr().String())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	close(stop)
	log.Printf("engine: shutting down")
	if err := srv.Shutdown(); err != nil {
		log.Printf("engine: shutdown: %v", err)
	}
	return 0
}
