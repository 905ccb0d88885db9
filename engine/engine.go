// Package engine wires Podium together: the catalog, the ANN index, retrieval, the ranking
// pipeline and the data loaders. cmd/engine builds one Engine and serves it with
// engine/server.
package engine

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/podium-rank/podium/engine/ann"
	"github.com/podium-rank/podium/engine/catalog"
	"github.com/podium-rank/podium/engine/events"
	"github.com/podium-rank/podium/engine/pipeline"
	"github.com/podium-rank/podium/engine/plugin"
	"github.com/podium-rank/podium/engine/retrieval"
	"github.com/podium-rank/podium/engine/stages"
)

// Config configures an Engine. Zero values get the defaults.
type Config struct {
	// Dim is the embedding dimension of items and users (0: no embeddings, popularity only).
	Dim int
	// Index chooses the ANN index: "hnsw" (default), "ivf", "flat" (exact) or "none".
	Index string
	// Metric is "cosine" (default) or "dot".
	Metric string
	// HNSW tunes the HNSW index.
	HNSW ann.HNSWConfig
	// IVF tunes the IVF-flat index, the faster choice for very large candidate counts
	// (RATIONALE.md, "ANN index").
	IVF ann.IVFConfig
	// Catalog sizes the catalog's stores.
	Catalog catalog.Config
	// Retrieval tunes candidate retrieval.
	Retrieval retrieval.Config
	// PopularityFeature names the item feature the popularity retriever orders by
	// (default "popularity").
	PopularityFeature string
	// MaxCandidates bounds the candidates a rerank request may send (default 5000).
	MaxCandidates int
	// MaxExclude bounds the exclude list of a request (default 5000).
	MaxExclude int
	// WasmCacheDir holds wazero's compilation cache ("" compiles from scratch each start).
	WasmCacheDir string
	// PluginLogger receives plugins' bounded debug logs; nil discards them.
	PluginLogger *slog.Logger
	// CoVisitCandidates is how many co-visited items of the session's recent items join
	// the candidates when events are open (default 100).
	CoVisitCandidates int
	// SessionCandidates is how many of the session's own recent items join the candidates
	// (default 10; negative for none). Exclusion rules still apply to them.
	SessionCandidates int
	// AffinityAttribute is the item attribute whose values the session's interest is
	// measured over (pipeline.Env.Affinity, the affinity_score feature and the "affinity"
	// retriever): default "category"; "-" for none.
	AffinityAttribute string
}

// MaxK is the largest k a request may ask for.
const MaxK = 1000

// DefaultK is the k of a request that gives none.
const DefaultK = 20

// Engine serves rankings over a catalog. All methods are goroutine-safe.
type Engine struct {
	cfg   Config
	cat   *catalog.Catalog
	idx   ann.Index
	pop   *retrieval.Popularity
	ret   *retrieval.Retriever
	pipe  atomic.Pointer[pipeline.Pipeline]
	ev    atomic.Pointer[events.Ingestor]
	ready atomic.Bool
	// defaultPipe is set while the pipeline is the built-in default, which OpenEvents
	// rebuilds so that it reads real-time features.
	defaultPipe atomic.Bool
	seq         atomic.Uint64
	idPfx       string
	start       time.Time
	pool        sync.Pool

	stats Stats

	rtMu    sync.Mutex
	rt      *plugin.Runtime
	plugins []*plugin.Plugin

	// live, once OpenLive succeeded, runs the pipeline from the plugin registry instead of
	// pipe (live.go).
	live atomic.Pointer[Live]
}

// Stats are the engine's counters. Read them with Engine.Stats.
type Stats struct {
	Requests      atomic.Uint64
	FellBack      atomic.Uint64
	ItemsUpserted atomic.Uint64
	ItemsFailed   atomic.Uint64
}

// New returns an engine with an empty catalog; load items, then call SetReady.
func New(cfg Config) (*Engine, error) {
	if cfg.Dim < 0 || cfg.Dim > 4096 {
		return nil, fmt.Errorf("engine: embedding dimension %d is outside 0..4096", cfg.Dim)
	}
	if cfg.PopularityFeature == "" {
		cfg.PopularityFeature = "popularity"
	}
	if cfg.MaxCandidates <= 0 {
		cfg.MaxCandidates = 5000
	}
	if cfg.MaxExclude <= 0 {
		cfg.MaxExclude = 5000
	}
	if cfg.CoVisitCandidates <= 0 {
		cfg.CoVisitCandidates = 100
	}
	if cfg.AffinityAttribute == "" {
		cfg.AffinityAttribute = "category"
	}
	if cfg.SessionCandidates == 0 {
		cfg.SessionCandidates = 10
	}
	metric := ann.Cosine
	switch cfg.Metric {
	case "", "cosine":
	case "dot":
		metric = ann.Dot
	default:
		return nil, fmt.Errorf("engine: unknown metric %q (want cosine or dot)", cfg.Metric)
	}
	cfg.Catalog.Dim = cfg.Dim
	e := &Engine{cfg: cfg, cat: catalog.New(cfg.Catalog), start: time.Now()}
	if cfg.Dim > 0 {
		switch cfg.Index {
		case "", "hnsw":
			e.idx = ann.NewHNSW(cfg.Dim, metric, cfg.HNSW)
		case "flat":
			e.idx = ann.NewFlat(cfg.Dim, metric)
		case "ivf":
			e.idx = ann.NewIVF(cfg.Dim, metric, cfg.IVF)
		case "none":
		default:
			return nil, fmt.Errorf("engine: unknown index %q (want hnsw, ivf, flat or none)", cfg.Index)
		}
	}
	e.pop = retrieval.NewPopularity(e.cat, cfg.PopularityFeature)
	e.ret = retrieval.New(e.cat, e.idx, e.pop, cfg.Retrieval)
	e.defaultPipe.Store(true)
	e.pipe.Store(e.defaultPipeline())
	e.idPfx = fmt.Sprintf("%08x", uint32(time.Now().UnixNano()))
	e.pool.New = func() any { return newRanking() }
	return e, nil
}

// Catalog returns the engine's catalog.
func (e *Engine) Catalog() *catalog.Catalog { return e.cat }

// Index returns the engine's ANN index, or nil.
func (e *Engine) Index() ann.Index { return e.idx }

// Popularity returns the popularity retriever.
func (e *Engine) Popularity() *retrieval.Popularity { return e.pop }

// Pipeline returns the live pipeline.
func (e *Engine) Pipeline() *pipeline.Pipeline { return e.pipe.Load() }

// SetPipeline atomically replaces the live pipeline; requests in flight finish on the old one.
func (e *Engine) SetPipeline(p *pipeline.Pipeline) {
	e.defaultPipe.Store(false)
	e.pipe.Store(p)
}

// defaultPipeline is the pipeline the engine runs when none is configured: one native
// linear blend of similarity, co-visitation and popularity (stages.DefaultBlend).
func (e *Engine) defaultPipeline() *pipeline.Pipeline {
	return &pipeline.Pipeline{Steps: []pipeline.Step{{Stage: stages.NewLinear("rank", stages.DefaultBlend, e.Sources())}}}
}

// Ready reports whether the catalog and index are loaded.
func (e *Engine) Ready() bool { return e.ready.Load() }

// SetReady marks the engine ready to serve (after the initial load) and builds the
// popularity order.
func (e *Engine) SetReady() {
	e.pop.Refresh(true)
	e.ready.Store(true)
}

// Counters returns the engine's counters.
func (e *Engine) Counters() *Stats { return &e.stats }

// RefreshLoop rebuilds the popularity order every interval until stop is closed, so that
// catalog changes reach the popularity retriever without touching the request path.
func (e *Engine) RefreshLoop(interval time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			e.refreshPopularity(now)
		}
	}
}

// checkItem validates an item beyond what the catalog checks: the index needs a non-zero
// embedding under cosine.
func (e *Engine) checkItem(it *catalog.Item) error {
	if err := e.cat.Validate(it); err != nil {
		return err
	}
	if e.idx != nil && e.idx.Metric() == ann.Cosine && len(it.Embedding) > 0 {
		var s float64
		for _, x := range it.Embedding {
			s += float64(x) * float64(x)
		}
		if s == 0 || math.IsInf(s, 0) {
			return errors.New("embedding is all zeros, so it has no direction under cosine similarity")
		}
	}
	return nil
}

// LoadItems upserts NDJSON items from r, indexing their embeddings with one worker per
// core, and reports per line what was accepted. It may run while requests are served.
func (e *Engine) LoadItems(r io.Reader) (catalog.Report, error) {
	type job struct {
		id  uint32
		vec []float32
	}
	jobs := make(chan job, 1024)
	var wg sync.WaitGroup
	if e.idx != nil {
		for w := 0; w < runtime.GOMAXPROCS(0); w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range jobs {
					// Validated by checkItem, so the index cannot refuse it.
					_ = e.idx.Upsert(j.id, j.vec)
				}
			}()
		}
	}
	rep, err := catalog.ReadItems(r, e.checkItem, func(it *catalog.Item) error {
		id, err := e.cat.Upsert(it)
		if err != nil {
			return err
		}
		if e.idx != nil && len(it.Embedding) > 0 {
			jobs <- job{id, it.Embedding}
		}
		return nil
	})
	close(jobs)
	wg.Wait()
	e.stats.ItemsUpserted.Add(uint64(rep.Accepted))
	e.stats.ItemsFailed.Add(uint64(rep.Failed))
	return rep, err
}

// UpsertItems stores items given as values (the demo loader and tests use it), indexing
// with one worker per core. It stops at the first invalid item.
func (e *Engine) UpsertItems(items []catalog.Item) error {
	for i := range items {
		if err := e.checkItem(&items[i]); err != nil {
			return fmt.Errorf("cannot upsert item %q: %w", items[i].ID, err)
		}
	}
	ids := make([]uint32, len(items))
	for i := range items {
		id, err := e.cat.Upsert(&items[i])
		if err != nil {
			return fmt.Errorf("cannot upsert item %q: %w", items[i].ID, err)
		}
		ids[i] = id
	}
	if e.idx == nil {
		return nil
	}
	var wg sync.WaitGroup
	var next atomic.Int64
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(items) {
					return
				}
				if len(items[i].Embedding) > 0 {
					_ = e.idx.Upsert(ids[i], items[i].Embedding)
				}
			}
		}()
	}
	wg.Wait()
	e.stats.ItemsUpserted.Add(uint64(len(items)))
	return nil
}

// LoadUsers upserts NDJSON users from r and reports per line what was accepted.
func (e *Engine) LoadUsers(r io.Reader) (catalog.Report, error) {
	return catalog.ReadUsers(r, e.cat.ValidateUser, func(u *catalog.User) error {
		_, err := e.cat.UpsertUser(u)
		return err
	})
}

// UpsertUsers stores users given as values. It stops at the first invalid user.
func (e *Engine) UpsertUsers(users []catalog.User) error {
	for i := range users {
		if _, err := e.cat.UpsertUser(&users[i]); err != nil {
			return fmt.Errorf("cannot upsert user %q: %w", users[i].ID, err)
		}
	}
	return nil
}

// DeleteItem removes an item from the catalog and the index.
func (e *Engine) DeleteItem(id string) error {
	dense, err := e.cat.Delete(id)
	if err != nil {
		return err
	}
	if e.idx != nil {
		e.idx.Delete(dense)
	}
	return nil
}
