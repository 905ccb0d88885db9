package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/podium-rank/podium/engine/pipeline"
	"github.com/podium-rank/podium/engine/plugin"
	"github.com/podium-rank/podium/engine/stages"
	"github.com/podium-rank/podium/sdk/abi"
)

// resolver answers plugins' podium.lookup from the catalog: attribute values to their
// codes, and item ids ("id") to dense ids.
type resolver struct{ e *Engine }

func (r resolver) Lookup(space, value string) (int32, bool) {
	cat := r.e.cat
	if space == abi.LookupIDSpace {
		id, ok := cat.Items().Lookup(value)
		return int32(id), ok
	}
	ai, ok := cat.AttributeIndex(space)
	if !ok {
		return -1, false
	}
	vals := cat.AttributeValues(ai)
	if vals == nil {
		return -1, false
	}
	id, ok := vals.Lookup(value)
	return int32(id), ok
}

// Lookup returns the function plugins' podium.lookup answers with, for native twins of
// plugins that must see the same codes.
func Lookup(e *Engine) func(space, value string) int32 {
	return func(space, value string) int32 {
		code, ok := resolver{e}.Lookup(space, value)
		if !ok {
			return -1
		}
		return code
	}
}

// Runtime returns the engine's Wasm runtime, creating it on first use with the
// compilation cache in Config.WasmCacheDir.
func (e *Engine) Runtime() (*plugin.Runtime, error) {
	e.rtMu.Lock()
	defer e.rtMu.Unlock()
	if e.rt != nil {
		return e.rt, nil
	}
	rt, err := plugin.NewRuntime(context.Background(), plugin.Config{CacheDir: e.cfg.WasmCacheDir, Resolver: resolver{e}, Logger: e.cfg.PluginLogger})
	if err != nil {
		return nil, fmt.Errorf("cannot start the Wasm runtime: %w", err)
	}
	e.rt = rt
	return rt, nil
}

// LoadPipelineFile reads a pipeline config (see pipeline.Config), loads and starts its
// plugins and makes it the live pipeline. Plugin and file paths are relative to the
// config's directory. Nothing changes if any stage fails to load.
func (e *Engine) LoadPipelineFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read pipeline config: %w", err)
	}
	cfg, err := pipeline.ParseConfig(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	p, err := e.BuildPipeline(cfg, filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	e.SetPipeline(p)
	return nil
}

// BuildPipeline builds a pipeline from cfg, resolving relative paths against dir. On error
// it closes whatever it had started.
func (e *Engine) BuildPipeline(cfg *pipeline.Config, dir string) (*pipeline.Pipeline, error) {
	p := &pipeline.Pipeline{}
	var started []*plugin.Plugin
	fail := func(err error) (*pipeline.Pipeline, error) {
		for _, pl := range started {
			pl.Close(context.Background())
		}
		return nil, err
	}
	for i := range cfg.Stages {
		sc := &cfg.Stages[i]
		st, pl, err := e.buildStage(sc, dir)
		if err != nil {
			return fail(fmt.Errorf("stage %q: %w", sc.Name, err))
		}
		if pl != nil {
			started = append(started, pl)
		}
		fb, _ := pipeline.ParseFallback(sc.Fallback)
		p.Steps = append(p.Steps, pipeline.Step{Stage: st, Fallback: fb, Cut: sc.Cut})
	}
	e.rtMu.Lock()
	e.plugins = append(e.plugins, started...)
	e.rtMu.Unlock()
	return p, nil
}

func (e *Engine) buildStage(sc *pipeline.StageConfig, dir string) (pipeline.Stage, *plugin.Plugin, error) {
	kind, _ := pipeline.ParseKind(sc.Kind)
	params, err := inlineFiles(sc.Params, sc.Files, dir)
	if err != nil {
		return nil, nil, err
	}
	if name, ok := strings.CutPrefix(sc.Plugin, "native:"); ok {
		st, err := e.nativeStage(sc.Name, name, kind, params)
		return st, nil, err
	}
	path := sc.Plugin
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	wasm, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read plugin: %w (build plugins with `make wasm`)", err)
	}
	rt, err := e.Runtime()
	if err != nil {
		return nil, nil, err
	}
	ctx := context.Background()
	mod, err := rt.Load(ctx, wasm)
	if err != nil {
		return nil, nil, err
	}
	pk, err := stages.KindOf(mod.Kind())
	if err != nil || pk != kind {
		mod.Close(ctx)
		return nil, nil, fmt.Errorf("plugin %s is a %s plugin, the stage is %s", mod.Name(), mod.Kind(), kind)
	}
	timeout, _ := sc.DeadlineDuration()
	pl, err := mod.Start(ctx, plugin.PluginConfig{Params: params, Timeout: timeout})
	if err != nil {
		mod.Close(ctx)
		return nil, nil, err
	}
	if err := pl.Warm(ctx); err != nil {
		pl.Close(ctx)
		mod.Close(ctx)
		return nil, nil, err
	}
	st, err := stages.NewPluginStage(sc.Name, pl, e.Sources())
	if err != nil {
		pl.Close(ctx)
		return nil, nil, err
	}
	return st, pl, nil
}

// nativeStage builds a stage implemented in Go: "native:linear" ({"weights":{name:w}}) or
// "native:by-retrieval".
func (e *Engine) nativeStage(stage, name string, kind pipeline.Kind, params json.RawMessage) (pipeline.Stage, error) {
	switch name {
	case "linear":
		if kind != pipeline.KindRank {
			return nil, fmt.Errorf("native:linear is a rank stage")
		}
		var p struct {
			Weights map[string]float32 `json:"weights"`
		}
		dec := json.NewDecoder(bytes.NewReader(params))
		dec.DisallowUnknownFields()
		if len(params) > 0 {
			if err := dec.Decode(&p); err != nil {
				return nil, fmt.Errorf("native:linear params: %v", err)
			}
		}
		ws := stages.DefaultBlend
		if len(p.Weights) > 0 {
			ws = ws[:0:0]
			for f, w := range p.Weights {
				ws = append(ws, stages.Weight{Feature: f, W: w})
			}
			sort.Slice(ws, func(a, b int) bool { return ws[a].Feature < ws[b].Feature })
		}
		return stages.NewLinear(stage, ws, e.Sources()), nil
	case "by-retrieval":
		return pipeline.ByRetrieval{}, nil
	}
	return nil, fmt.Errorf("unknown native stage %q (want native:linear or native:by-retrieval)", name)
}

// inlineFiles returns params with each files[k] read (relative to dir) and set as param k:
// as JSON if the file holds JSON, else as a string.
func inlineFiles(params json.RawMessage, files map[string]string, dir string) (json.RawMessage, error) {
	if len(files) == 0 {
		return params, nil
	}
	m := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(params)) > 0 {
		if err := json.Unmarshal(params, &m); err != nil {
			return nil, fmt.Errorf("params: %v", err)
		}
	}
	for k, f := range files {
		if !filepath.IsAbs(f) {
			f = filepath.Join(dir, f)
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("cannot read file for param %q: %w", k, err)
		}
		if json.Valid(b) {
			m[k] = json.RawMessage(b)
		} else {
			s, _ := json.Marshal(string(b))
			m[k] = s
		}
	}
	return json.Marshal(m)
}

// closePlugins retires every plugin the engine started, then the runtime.
func (e *Engine) closePlugins() error {
	e.rtMu.Lock()
	defer e.rtMu.Unlock()
	ctx := context.Background()
	for _, p := range e.plugins {
		p.Drain(ctx)
		p.Close(ctx)
		p.Module().Close(ctx)
	}
	e.plugins = nil
	if e.rt != nil {
		err := e.rt.Close(ctx)
		e.rt = nil
		return err
	}
	return nil
}
