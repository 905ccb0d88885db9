// Package registry stores plugin versions (content-addressed .wasm with metadata) and the
// live assignment of every pipeline stage, durably, and validates plugins at upload.
//
// A plugin version is the sha256 of its .wasm. Uploading (Push) is separate from
// activating: Push validates and stores; a stage assignment (SetStage) names versions. The
// engine's live layer (engine/live.go) builds and swaps the running stages; the registry
// is the record it restores from at start. See RATIONALE.md, "Why a content-addressed
// registry with one state file?".
package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/podium-rank/podium/engine/plugin"
)

// Config configures a Registry.
type Config struct {
	// Dir holds the registry: plugins/<version>.wasm and registry.json. Empty keeps
	// everything in memory (nothing survives a restart).
	Dir string
	// Runtime compiles plugins for validation and for the module cache. Required.
	Runtime *plugin.Runtime
	// MaxIdleModules bounds the compiled modules kept while no stage uses them, so that
	// swapping back to a recent version does not compile again (default 4).
	MaxIdleModules int
	// SmokeCandidates is the size of the synthetic batch of the smoke call (default 64).
	SmokeCandidates int
	// MaxWasmBytes bounds an upload (default 64 MiB).
	MaxWasmBytes int
	// Logger receives the registry's notices; nil discards them.
	Logger *slog.Logger
	// Now returns the time; nil means time.Now.
	Now func() time.Time
}

// Registry is the store of plugin versions and stage assignments. It is goroutine-safe.
type Registry struct {
	cfg Config

	mu      sync.Mutex
	plugins map[string]*Plugin
	blobs   map[string][]byte // memory-only mode
	stages  []Stage
	seed    string
	events  []Event
	mods    map[string]*modEntry
	clock   uint64 // LRU clock of the module cache
	closed  bool
}

// state is the on-disk form of registry.json.
type state struct {
	Format  int      `json:"format"`
	Plugins []Plugin `json:"plugins"`
	Stages  []Stage  `json:"stages"`
	Seed    string   `json:"seed,omitempty"`
	Events  []Event  `json:"events"`
}

const (
	stateFile   = "registry.json"
	pluginsDir  = "plugins"
	stateFormat = 1
)

// Open opens (creating if needed) the registry in cfg.Dir and restores its plugins,
// stages and events. It checks that every stored .wasm still hashes to its version; a
// damaged or missing .wasm that a stage uses is an error, an unused one is dropped with a
// warning.
func Open(cfg Config) (*Registry, error) {
	if cfg.Runtime == nil {
		return nil, errors.New("registry: Config.Runtime is nil")
	}
	if cfg.MaxIdleModules <= 0 {
		cfg.MaxIdleModules = 4
	}
	if cfg.SmokeCandidates <= 0 {
		cfg.SmokeCandidates = 64
	}
	if cfg.MaxWasmBytes <= 0 {
		cfg.MaxWasmBytes = 64 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Registry{cfg: cfg, plugins: map[string]*Plugin{}, blobs: map[string][]byte{}, mods: map[string]*modEntry{}}
	if cfg.Dir == "" {
		return r, nil
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, pluginsDir), 0o755); err != nil {
		return nil, fmt.Errorf("cannot create the registry directory: %w", err)
	}
	removeTemps(cfg.Dir)
	removeTemps(filepath.Join(cfg.Dir, pluginsDir))
	data, err := os.ReadFile(filepath.Join(cfg.Dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read the registry: %w", err)
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("registry: %s is damaged: %v", filepath.Join(cfg.Dir, stateFile), err)
	}
	if st.Format != stateFormat {
		return nil, fmt.Errorf("registry: %s has format %d, this engine reads format %d", filepath.Join(cfg.Dir, stateFile), st.Format, stateFormat)
	}
	r.stages, r.events, r.seed = st.Stages, st.Events, st.Seed
	for i := range st.Plugins {
		p := st.Plugins[i]
		wasm, err := os.ReadFile(r.blobPath(p.Version))
		if err == nil && plugin.Version(wasm) != p.Version {
			err = fmt.Errorf("its sha256 is %s", plugin.Version(wasm))
		}
		if err != nil {
			if stage := r.userOf(p.Version); stage != "" {
				return nil, fmt.Errorf("registry: plugin %s (%s), used by stage %q, cannot be restored: %v", p.Version, p.Name, stage, err)
			}
			cfg.Logger.Warn("registry: dropping a damaged plugin", "version", p.Version, "name", p.Name, "err", err)
			continue
		}
		r.plugins[p.Version] = &p
	}
	for _, s := range r.stages {
		for _, v := range stageVersions(&s) {
			if !IsNative(v) && r.plugins[v] == nil {
				return nil, fmt.Errorf("registry: stage %q uses plugin %s, which is not stored", s.Name, v)
			}
		}
	}
	return r, nil
}

func removeTemps(dir string) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

func (r *Registry) blobPath(version string) string {
	return filepath.Join(r.cfg.Dir, pluginsDir, version+".wasm")
}

// Dir returns the registry's directory ("" in memory-only mode).
func (r *Registry) Dir() string { return r.cfg.Dir }

// Runtime returns the Wasm runtime the registry compiles with.
func (r *Registry) Runtime() *plugin.Runtime { return r.cfg.Runtime }

// stageVersions lists every version a stage refers to: champion, challengers, history.
func stageVersions(s *Stage) []string {
	vs := []string{s.Champion.Version}
	for _, c := range s.Challengers {
		vs = append(vs, c.Version)
	}
	for _, h := range s.History {
		vs = append(vs, h.Version)
	}
	return vs
}

// userOf returns the name of a stage that refers to version, or "". Call with r.mu held
// (or before r is shared).
func (r *Registry) userOf(version string) string {
	for i := range r.stages {
		if slices.Contains(stageVersions(&r.stages[i]), version) {
			return r.stages[i].Name
		}
	}
	return ""
}

// save writes registry.json atomically. Call with r.mu held.
func (r *Registry) save() error {
	if r.cfg.Dir == "" {
		return nil
	}
	st := state{Format: stateFormat, Stages: r.stages, Seed: r.seed, Events: r.events}
	for _, p := range r.plugins {
		st.Plugins = append(st.Plugins, *p)
	}
	sort.Slice(st.Plugins, func(i, j int) bool { return st.Plugins[i].Version < st.Plugins[j].Version })
	data, err := json.MarshalIndent(&st, "", "  ")
	if err != nil {
		return fmt.Errorf("cannot encode the registry: %w", err)
	}
	if err := writeFileAtomic(r.cfg.Dir, stateFile, data); err != nil {
		return fmt.Errorf("cannot save the registry: %w", err)
	}
	return nil
}

// writeFileAtomic writes data to dir/name so that a crash leaves either the old or the
// new file: a temporary file, fsync, rename, fsync of the directory.
func writeFileAtomic(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, name+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// addEvent appends ev to the log, keeping the newest MaxEvents. Call with r.mu held.
func (r *Registry) addEvent(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = r.cfg.Now()
	}
	r.events = append(r.events, ev)
	if n := len(r.events) - MaxEvents; n > 0 {
		r.events = slices.Delete(r.events, 0, n)
	}
}

// Push validates wasm and stores it. It loads it (manifest, ABI version, exports, imports,
// compile) and makes a smoke call on a synthetic batch with the manifest's default params;
// a module that fails any of these is refused with an error wrapping ErrInvalid that says
// why, and nothing is stored. Pushing a version that is already stored returns it with
// existed set and changes nothing. caller is recorded as the uploader.
func (r *Registry) Push(ctx context.Context, wasm []byte, caller string) (p Plugin, existed bool, err error) {
	if len(wasm) == 0 {
		return p, false, fmt.Errorf("%w: the body is empty; send the .wasm file", ErrInvalid)
	}
	if len(wasm) > r.cfg.MaxWasmBytes {
		return p, false, fmt.Errorf("%w: the module has %d bytes; the limit is %d", ErrInvalid, len(wasm), r.cfg.MaxWasmBytes)
	}
	version := plugin.Version(wasm)
	r.mu.Lock()
	if old, ok := r.plugins[version]; ok {
		r.mu.Unlock()
		return *old, true, nil
	}
	r.mu.Unlock()

	mod, err := r.cfg.Runtime.Load(ctx, wasm)
	if err != nil {
		return p, false, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	smoke, err := SmokeModule(ctx, mod, nil, r.cfg.SmokeCandidates)
	if err != nil {
		mod.Close(ctx)
		return p, false, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	p = Plugin{
		Version:    version,
		Name:       mod.Name(),
		Kind:       mod.Kind(),
		Manifest:   mod.Manifest(),
		Size:       len(wasm),
		UploadedAt: r.cfg.Now().UTC(),
		UploadedBy: caller,
		Validation: Validation{
			Checks:          []string{"manifest", "abi_version", "imports", "exports", "compile", "init", "smoke_call"},
			CompileMS:       float64(mod.CompileTime().Microseconds()) / 1000,
			SmokeCandidates: r.cfg.SmokeCandidates,
			SmokeUS:         smoke.Microseconds(),
		},
	}
	if r.cfg.Dir != "" {
		if err := writeFileAtomic(filepath.Join(r.cfg.Dir, pluginsDir), version+".wasm", wasm); err != nil {
			mod.Close(ctx)
			return Plugin{}, false, fmt.Errorf("cannot store the plugin: %w", err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		mod.Close(ctx)
		return Plugin{}, false, plugin.ErrClosed
	}
	if old, ok := r.plugins[version]; ok { // a concurrent push of the same bytes won
		mod.Close(ctx)
		return *old, true, nil
	}
	if r.cfg.Dir == "" {
		r.blobs[version] = slices.Clone(wasm)
	}
	r.plugins[version] = &p
	oldEvents := r.events
	r.events = slices.Clone(r.events)
	r.addEvent(Event{Action: ActionPush, Version: version, Caller: caller, Detail: p.Name})
	if err := r.save(); err != nil {
		delete(r.plugins, version)
		delete(r.blobs, version)
		r.events = oldEvents
		mod.Close(ctx)
		return Plugin{}, false, err
	}
	// Keep the compiled module: it is likely to be activated next.
	r.putIdle(version, mod)
	return p, false, nil
}

// Plugins returns every stored plugin, newest upload first.
func (r *Registry) Plugins() []Plugin {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Plugin, 0, len(r.plugins))
	for _, p := range r.plugins {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].UploadedAt.Equal(out[j].UploadedAt) {
			return out[i].UploadedAt.After(out[j].UploadedAt)
		}
		return out[i].Version < out[j].Version
	})
	return out
}

// Resolve returns the full version that ref names: a full hex sha256, a unique prefix of
// at least 6 hex digits, or a native stage ("native:linear"), returned as is.
func (r *Registry) Resolve(ref string) (string, error) {
	if IsNative(ref) {
		return ref, nil
	}
	ref = strings.ToLower(strings.TrimSpace(ref))
	if len(ref) < 6 {
		return "", fmt.Errorf("%w: version %q is too short; give at least 6 hex digits", ErrNotFound, ref)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.plugins[ref]; ok {
		return ref, nil
	}
	found := ""
	for v := range r.plugins {
		if strings.HasPrefix(v, ref) {
			if found != "" {
				return "", fmt.Errorf("%w: %q matches %s and %s; give more digits", ErrAmbiguous, ref, found[:12], v[:12])
			}
			found = v
		}
	}
	if found == "" {
		return "", fmt.Errorf("%w: no plugin version %q; push it first", ErrNotFound, ref)
	}
	return found, nil
}

// Plugin returns the plugin that ref names (see Resolve).
func (r *Registry) Plugin(ref string) (Plugin, error) {
	v, err := r.Resolve(ref)
	if err != nil {
		return Plugin{}, err
	}
	if IsNative(v) {
		return Plugin{}, fmt.Errorf("%w: %s is a native stage, not a stored plugin", ErrNotFound, v)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return *r.plugins[v], nil
}

// Wasm returns the .wasm of a stored version.
func (r *Registry) Wasm(version string) ([]byte, error) {
	r.mu.Lock()
	_, ok := r.plugins[version]
	blob := r.blobs[version]
	r.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: no plugin version %s", ErrNotFound, version)
	}
	if r.cfg.Dir == "" {
		return blob, nil
	}
	wasm, err := os.ReadFile(r.blobPath(version))
	if err != nil {
		return nil, fmt.Errorf("cannot read plugin %s: %w", version, err)
	}
	if plugin.Version(wasm) != version {
		return nil, fmt.Errorf("registry: the stored .wasm of %s is damaged (sha256 mismatch)", version)
	}
	return wasm, nil
}

// Delete removes a stored version that no stage refers to (as champion, challenger or in
// its rollback history); otherwise it fails with ErrInUse naming the stage.
func (r *Registry) Delete(ctx context.Context, ref, caller string) (Plugin, error) {
	v, err := r.Resolve(ref)
	if err != nil {
		return Plugin{}, err
	}
	if IsNative(v) {
		return Plugin{}, fmt.Errorf("%w: %s is a native stage", ErrNotFound, v)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.plugins[v]
	if !ok {
		return Plugin{}, fmt.Errorf("%w: no plugin version %s", ErrNotFound, v)
	}
	if stage := r.userOf(v); stage != "" {
		return Plugin{}, fmt.Errorf("%w: stage %q uses %s (as champion, challenger or rollback target)", ErrInUse, stage, v[:12])
	}
	if e := r.mods[v]; e != nil && e.refs > 0 {
		return Plugin{}, fmt.Errorf("%w: %s is still running (draining); retry in a moment", ErrInUse, v[:12])
	}
	blob := r.blobs[v]
	delete(r.plugins, v)
	delete(r.blobs, v)
	oldEvents := r.events
	r.events = slices.Clone(r.events)
	r.addEvent(Event{Action: ActionDelete, Version: v, Caller: caller, Detail: p.Name})
	if err := r.save(); err != nil {
		r.plugins[v] = p
		if blob != nil {
			r.blobs[v] = blob
		}
		r.events = oldEvents
		return Plugin{}, err
	}
	if e := r.mods[v]; e != nil {
		delete(r.mods, v)
		e.mod.Close(ctx)
	}
	if r.cfg.Dir != "" {
		if err := os.Remove(r.blobPath(v)); err != nil && !errors.Is(err, os.ErrNotExist) {
			r.cfg.Logger.Warn("registry: cannot remove a deleted plugin's file", "version", v, "err", err)
		}
	}
	return *p, nil
}

// Stages returns the stage assignments in pipeline order (deep copies).
func (r *Registry) Stages() []Stage {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Stage, len(r.stages))
	for i := range r.stages {
		out[i] = r.stages[i].Clone()
	}
	return out
}

// Stage returns the assignment of the named stage.
func (r *Registry) Stage(name string) (Stage, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.stages {
		if r.stages[i].Name == name {
			return r.stages[i].Clone(), true
		}
	}
	return Stage{}, false
}

// CheckStage validates s (Stage.Check) and that every version it names is stored (or
// native) and of the stage's kind.
func (r *Registry) CheckStage(s *Stage) error {
	if err := s.Check(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.checkVersions(s)
}

func (r *Registry) checkVersions(s *Stage) error {
	for _, v := range stageVersions(s) {
		if IsNative(v) {
			continue
		}
		p, ok := r.plugins[v]
		if !ok {
			return fmt.Errorf("%w: stage %q: no plugin version %s; push it first", ErrNotFound, s.Name, v)
		}
		if string(p.Kind) != s.Kind {
			return fmt.Errorf("%w: stage %q is a %s stage; plugin %s (%s) is a %s plugin", ErrInvalid, s.Name, s.Kind, p.Name, v[:12], p.Kind)
		}
	}
	return nil
}

// SetStages replaces every stage assignment at once and records seed (an identity of
// what the stages were seeded from, see Seed) and ev. The engine seeds the registry this
// way from a pipeline file. A stage keeps counting revisions from its predecessor of the
// same name.
func (r *Registry) SetStages(stages []Stage, seed string, ev Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range stages {
		if err := stages[i].Check(); err != nil {
			return err
		}
		if err := r.checkVersions(&stages[i]); err != nil {
			return err
		}
	}
	old, oldEvents, oldSeed := r.stages, r.events, r.seed
	revs := map[string]uint64{}
	for _, s := range old {
		revs[s.Name] = s.Revision
	}
	r.stages = make([]Stage, len(stages))
	now := r.cfg.Now().UTC()
	for i := range stages {
		r.stages[i] = stages[i].Clone()
		r.stages[i].Revision, r.stages[i].UpdatedAt, r.stages[i].UpdatedBy = revs[stages[i].Name]+1, now, ev.Caller
	}
	r.seed = seed
	r.events = slices.Clone(r.events)
	r.addEvent(ev)
	if err := r.save(); err != nil {
		r.stages, r.events, r.seed = old, oldEvents, oldSeed
		return err
	}
	return nil
}

// Seed returns what SetStages last recorded as the stages' seed ("" if never).
func (r *Registry) Seed() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seed
}

// SetStage stores the assignment s, replacing the stage of the same name or adding it
// after the last stage of its kind, and records ev. If expect is not zero, the stored
// revision must equal it (else ErrConflict). It returns the stored stage, whose Revision
// is one more than before. The caller (the engine's live layer) has already built and
// checked what s names; SetStage checks again that the versions exist.
func (r *Registry) SetStage(s Stage, expect uint64, ev Event) (Stage, error) {
	if err := s.Check(); err != nil {
		return Stage{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.checkVersions(&s); err != nil {
		return Stage{}, err
	}
	idx := -1
	for i := range r.stages {
		if r.stages[i].Name == s.Name {
			idx = i
		}
	}
	var cur uint64
	if idx >= 0 {
		cur = r.stages[idx].Revision
		if r.stages[idx].Kind != s.Kind {
			return Stage{}, fmt.Errorf("%w: stage %q is a %s stage, not %s", ErrInvalid, s.Name, r.stages[idx].Kind, s.Kind)
		}
	}
	if expect != 0 && expect != cur {
		return Stage{}, fmt.Errorf("%w: stage %q is at revision %d, not %d; read it again and retry", ErrConflict, s.Name, cur, expect)
	}
	s = s.Clone()
	s.Revision = cur + 1
	s.UpdatedAt, s.UpdatedBy = r.cfg.Now().UTC(), ev.Caller
	if len(s.History) > MaxHistory {
		s.History = s.History[len(s.History)-MaxHistory:]
	}
	old, oldEvents := r.stages, r.events
	r.stages = slices.Clone(r.stages)
	if idx >= 0 {
		r.stages[idx] = s
	} else {
		at := len(r.stages)
		order := kindOrder(s.Kind)
		for i := range r.stages {
			if kindOrder(r.stages[i].Kind) > order {
				at = i
				break
			}
		}
		r.stages = slices.Insert(r.stages, at, s)
	}
	r.events = slices.Clone(r.events)
	ev.Stage = s.Name
	r.addEvent(ev)
	if err := r.save(); err != nil {
		r.stages, r.events = old, oldEvents
		return Stage{}, err
	}
	return s.Clone(), nil
}

func kindOrder(kind string) int {
	switch kind {
	case "rank":
		return 0
	case "rules":
		return 1
	}
	return 2
}

// Record appends an event that changes no stage (an engine notice).
func (r *Registry) Record(ev Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	oldEvents := r.events
	r.events = slices.Clone(r.events)
	r.addEvent(ev)
	if err := r.save(); err != nil {
		r.events = oldEvents
		return err
	}
	return nil
}

// Events returns the newest n events (all if n <= 0), oldest first.
func (r *Registry) Events(n int) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := r.events
	if n > 0 && len(ev) > n {
		ev = ev[len(ev)-n:]
	}
	return slices.Clone(ev)
}

// Close releases the idle compiled modules. Modules still acquired are released by their
// holders. It is safe to call more than once.
func (r *Registry) Close(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for v, e := range r.mods {
		if e.refs == 0 {
			e.mod.Close(ctx)
			delete(r.mods, v)
		}
	}
	return nil
}
