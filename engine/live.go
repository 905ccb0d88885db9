package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/podium-rank/podium/engine/pipeline"
	"github.com/podium-rank/podium/engine/plugin"
	"github.com/podium-rank/podium/engine/registry"
	"github.com/podium-rank/podium/engine/registry/compare"
	"github.com/podium-rank/podium/engine/stages"
)

// LiveConfig configures live plugin operations (Engine.OpenLive).
type LiveConfig struct {
	// RegistryDir holds the plugin registry; "" keeps it in memory (nothing survives a
	// restart).
	RegistryDir string
	// Seed is the pipeline (the --pipeline file) the registry is seeded with, relative
	// paths resolved against SeedDir; SeedFile, if set, is read into Seed and SeedDir. The
	// registry remembers what seeded it: at start, the same seed keeps the registry's
	// stages (with every change made through the admin API since), and a changed seed
	// replaces them (their champions go to the rollback history). Without a seed, an empty
	// registry starts with the default native blend and a non-empty one is kept. See
	// RATIONALE.md, "Why does the registry win over an unchanged --pipeline?".
	Seed     *pipeline.Config
	SeedDir  string
	SeedFile string
	// SeedNative makes the default native blend an explicit seed (--pipeline native): a
	// registry seeded otherwise is replaced by it, like a changed seed file.
	SeedNative bool
	// Instances is the pool size of champions and split challengers (0: GOMAXPROCS).
	Instances int
	// ShadowWorkers is the number of goroutines running shadow challengers (default 1);
	// each shadow challenger's pool has as many instances.
	ShadowWorkers int
	// ShadowQueue bounds the shadow jobs waiting for a worker (default 256); a sampled
	// request finding it full drops its shadow work and counts it.
	ShadowQueue int
	// ShadowCPU is the share of one core the shadow workers may use together (default
	// 0.1; 1 or more: no limit). Shadow work beyond it waits in the queue, then is
	// dropped and counted, so that shadows never take more than this from requests.
	ShadowCPU float64
	// ShadowMinIdle is the share of the machine's CPU that must have been idle over the
	// last 100 ms for shadow work to run (default 0.4; negative: no such condition), so
	// that shadows use idle CPU rather than the requests'. Read from /proc/stat; where it
	// cannot be read, only ShadowCPU applies.
	ShadowMinIdle float64
	// CanaryInterval is how often canary thresholds are checked (default 1s); negative
	// disables the background check (tests call CheckCanaries).
	CanaryInterval time.Duration
	// StatsWindow is the sliding window of the per-variant statistics of variants without
	// a canary (default 1m).
	StatsWindow time.Duration
	// Logger receives swaps, rollbacks and canary decisions; nil uses slog.Default.
	Logger *slog.Logger
}

// Live runs the engine's pipeline from a plugin registry and changes it while serving:
// activation, rollback, shadow and split challengers, canaries. Every method is
// goroutine-safe; changes are serialised. Open it with Engine.OpenLive and close it with
// Close before Engine.Close.
type Live struct {
	e   *Engine
	reg *registry.Registry
	cfg LiveConfig
	log *slog.Logger

	tmpl atomic.Pointer[liveTemplate]

	mu     sync.Mutex // serialises changes
	pairs  map[pairKey]*compare.Pair
	closed bool

	jobs     chan *shadowJob
	workers  sync.WaitGroup
	dropped  atomic.Uint64
	retiring sync.WaitGroup
	stop     chan struct{}
	loopDone chan struct{}

	swaps     atomic.Uint64
	rollbacks atomic.Uint64
	canaryRB  atomic.Uint64
}

// liveTemplate is the ordered list of slots: immutable, replaced when a stage is added.
type liveTemplate struct{ slots []*slot }

type pairKey struct{ stage, champion, challenger string }

// Sentinel errors of live operations, beside the registry's (registry.ErrNotFound,
// ErrInvalid, ErrInUse, ErrConflict), which the methods wrap as they come.
var (
	// ErrLiveClosed is returned by operations after Close.
	ErrLiveClosed = errors.New("engine: live operations are closed")
)

// OpenLive opens the registry, builds the live pipeline from it (seeding an empty
// registry from cfg.Seed or the default blend), and from then on Rank runs the live
// pipeline. Call it after OpenEvents, so that plugins read real-time features, and before
// serving. Nothing is served from the live pipeline if it fails.
func (e *Engine) OpenLive(cfg LiveConfig) (*Live, error) {
	if cfg.ShadowWorkers <= 0 {
		cfg.ShadowWorkers = 1
	}
	if cfg.ShadowQueue <= 0 {
		cfg.ShadowQueue = 256
	}
	if cfg.ShadowCPU <= 0 {
		cfg.ShadowCPU = 0.1
	}
	if cfg.ShadowMinIdle == 0 {
		cfg.ShadowMinIdle = 0.4
	}
	if cfg.CanaryInterval == 0 {
		cfg.CanaryInterval = time.Second
	}
	if cfg.StatsWindow <= 0 {
		cfg.StatsWindow = time.Minute
	}
	if cfg.Instances <= 0 {
		cfg.Instances = runtime.GOMAXPROCS(0)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	rt, err := e.Runtime()
	if err != nil {
		return nil, err
	}
	reg, err := registry.Open(registry.Config{Dir: cfg.RegistryDir, Runtime: rt, Logger: log})
	if err != nil {
		return nil, err
	}
	lv := &Live{e: e, reg: reg, cfg: cfg, log: log, pairs: map[pairKey]*compare.Pair{},
		jobs: make(chan *shadowJob, cfg.ShadowQueue), stop: make(chan struct{}), loopDone: make(chan struct{})}
	ctx := context.Background()
	if err := lv.seedRegistry(ctx); err != nil {
		reg.Close(ctx)
		return nil, fmt.Errorf("cannot seed the plugin registry: %w", err)
	}
	sts := reg.Stages()
	tmpl := &liveTemplate{}
	for _, st := range sts {
		s := &slot{name: st.Name}
		s.kind, _ = pipeline.ParseKind(st.Kind)
		a, err := lv.build(ctx, s, st, nil)
		if err != nil {
			for _, s := range tmpl.slots {
				lv.retireNow(s.cur.Load())
			}
			reg.Close(ctx)
			return nil, fmt.Errorf("cannot start stage %q from the registry: %w", st.Name, err)
		}
		lv.publish(s, a)
		tmpl.slots = append(tmpl.slots, s)
	}
	lv.tmpl.Store(tmpl)
	for range cfg.ShadowWorkers {
		lv.workers.Add(1)
		go lv.shadowWorker()
	}
	if cfg.CanaryInterval > 0 {
		go lv.canaryLoop(cfg.CanaryInterval)
	} else {
		close(lv.loopDone)
	}
	e.live.Store(lv)
	return lv, nil
}

// Live returns the live operations opened by OpenLive, or nil.
func (e *Engine) Live() *Live { return e.live.Load() }

// Registry returns the plugin registry.
func (lv *Live) Registry() *registry.Registry { return lv.reg }

// Close stops live operations: Rank goes back to the engine's static pipeline, the shadow
// workers and the canary loop stop, and every plugin is closed once the requests holding
// it finish. It is safe to call more than once.
func (lv *Live) Close() error {
	lv.mu.Lock()
	if lv.closed {
		lv.mu.Unlock()
		return nil
	}
	lv.closed = true
	lv.mu.Unlock()
	lv.e.live.CompareAndSwap(lv, nil)
	close(lv.stop)
	<-lv.loopDone
	lv.workers.Wait()
	for _, s := range lv.tmpl.Load().slots {
		s.cur.Load().release() // the slot's own reference
	}
	lv.retiring.Wait()
	return lv.reg.Close(context.Background())
}

// seedRegistry applies the configured seed to the registry (see LiveConfig.Seed).
func (lv *Live) seedRegistry(ctx context.Context) error {
	cfg := &lv.cfg
	if cfg.SeedFile != "" {
		data, err := os.ReadFile(cfg.SeedFile)
		if err != nil {
			return fmt.Errorf("cannot read pipeline config: %w", err)
		}
		c, err := pipeline.ParseConfig(data)
		if err != nil {
			return fmt.Errorf("%s: %w", cfg.SeedFile, err)
		}
		cfg.Seed, cfg.SeedDir = c, filepath.Dir(cfg.SeedFile)
	}
	old := lv.reg.Stages()
	if cfg.Seed == nil && !cfg.SeedNative && len(old) > 0 {
		return nil
	}
	sts, err := lv.seed(ctx, cfg.Seed, cfg.SeedDir)
	if err != nil {
		return err
	}
	hash := seedHash(sts)
	if len(old) > 0 && hash == lv.reg.Seed() {
		return nil
	}
	detail := "the default native blend"
	if cfg.Seed != nil {
		detail = "pipeline config " + cfg.SeedFile
	}
	if len(old) > 0 {
		detail += " (changed since the last start; replaces the registry's stages)"
		lv.log.Warn("engine: the pipeline config changed since it seeded the registry; its stages replace the registry's, previous champions go to the rollback history")
	}
	for i := range sts {
		for _, o := range old {
			if o.Name != sts[i].Name || o.Kind != sts[i].Kind {
				continue
			}
			sts[i].History = o.History
			if !o.Champion.Same(sts[i].Champion) {
				sts[i].History = append(sts[i].History, o.Champion)
			}
			if n := len(sts[i].History) - registry.MaxHistory; n > 0 {
				sts[i].History = sts[i].History[n:]
			}
		}
	}
	return lv.reg.SetStages(sts, hash, registry.Event{Action: "seed", Caller: "engine", Detail: detail})
}

// seedHash identifies a seed's stages (without times).
func seedHash(sts []registry.Stage) string {
	c := make([]registry.Stage, len(sts))
	for i, s := range sts {
		c[i] = s.Clone()
		c[i].Champion.Since = time.Time{}
		c[i].Champion.Params = json.RawMessage(compactParams(s.Champion.Params))
	}
	b, _ := json.Marshal(c)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// seed turns a pipeline config into stage assignments, pushing its plugins.
func (lv *Live) seed(ctx context.Context, cfg *pipeline.Config, dir string) ([]registry.Stage, error) {
	if cfg == nil {
		return []registry.Stage{{Name: "rank", Kind: "rank", Champion: registry.Variant{Version: "native:linear", Since: time.Now().UTC()}}}, nil
	}
	var out []registry.Stage
	for i := range cfg.Stages {
		sc := &cfg.Stages[i]
		params, err := inlineFiles(sc.Params, sc.Files, dir)
		if err != nil {
			return nil, fmt.Errorf("stage %q: %w", sc.Name, err)
		}
		d, err := sc.DeadlineDuration()
		if err != nil {
			return nil, fmt.Errorf("stage %q: %w", sc.Name, err)
		}
		st := registry.Stage{Name: sc.Name, Kind: sc.Kind, Deadline: registry.Duration(d), Fallback: sc.Fallback, Cut: sc.Cut,
			Champion: registry.Variant{Version: sc.Plugin, Params: params, Since: time.Now().UTC()}}
		if !registry.IsNative(sc.Plugin) {
			path := sc.Plugin
			if !filepath.IsAbs(path) {
				path = filepath.Join(dir, path)
			}
			wasm, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("stage %q: cannot read plugin: %w", sc.Name, err)
			}
			p, _, err := lv.reg.Push(ctx, wasm, "engine")
			if err != nil {
				return nil, fmt.Errorf("stage %q: %w", sc.Name, err)
			}
			st.Champion.Version = p.Version
		}
		out = append(out, st)
	}
	return out, nil
}

// publish makes a the slot's assignment, taking its users' references; the previous
// assignment, if any, retires once the requests holding it finish. Call with lv.mu held
// (or before lv is shared).
func (lv *Live) publish(s *slot, a *assignment) {
	for _, v := range a.variants() {
		v.users++
	}
	a.refs.Store(1)
	if old := s.cur.Swap(a); old != nil {
		old.release()
	}
}

// retire closes the variants of a that no other assignment uses. It runs off the request
// path, after the last reference to a is gone.
func (lv *Live) retire(a *assignment) {
	defer lv.retiring.Done()
	lv.mu.Lock()
	defer lv.mu.Unlock()
	lv.retireLocked(a)
}

func (lv *Live) retireLocked(a *assignment) {
	for _, v := range a.variants() {
		if v.users--; v.users == 0 {
			v.close()
		}
	}
}

// retireNow retires an assignment that was never shared (a failed start).
func (lv *Live) retireNow(a *assignment) { lv.retireLocked(a) }

func (v *variant) close() {
	if v.pl != nil {
		v.pl.Close(context.Background())
	}
	if v.release != nil {
		v.release()
	}
}

// variantKey identifies what a variant starts, so that an assignment that keeps it reuses
// it instead of restarting it.
func variantKey(st *registry.Stage, name, mode string, v registry.Variant) string {
	return fmt.Sprintf("%s|%s|%s|%d|%s|%s", name, mode, v.Version, st.DeadlineDuration(), st.Kind, compactParams(v.Params))
}

func compactParams(p []byte) string {
	var v any
	if len(p) == 0 || json.Unmarshal(p, &v) != nil || v == nil {
		return ""
	}
	if m, ok := v.(map[string]any); ok && len(m) == 0 {
		return ""
	}
	b, _ := json.Marshal(v) // sorted keys: equal params give equal keys
	return string(b)
}

// build starts everything st names, reusing prev's variants that do not change. On error
// it closes what it started. Call with lv.mu held (or before lv is shared).
func (lv *Live) build(ctx context.Context, s *slot, st registry.Stage, prev *assignment) (*assignment, error) {
	a := &assignment{lv: lv, slot: s, st: st, cut: st.Cut, salt: st.EffectiveSalt()}
	a.fallback, _ = pipeline.ParseFallback(st.Fallback)
	reuse := map[string]*variant{}
	if prev != nil {
		for _, v := range prev.variants() {
			reuse[v.key] = v
		}
	}
	var started []*variant
	fail := func(err error) (*assignment, error) {
		for _, v := range started {
			v.close()
		}
		return nil, err
	}
	get := func(name, mode string, share float64, rv registry.Variant, canary *registry.Canary) (*variant, error) {
		key := variantKey(&st, name, mode, rv)
		if v, ok := reuse[key]; ok {
			return v, nil
		}
		instances := lv.cfg.Instances
		if mode == registry.ModeShadow {
			instances = lv.cfg.ShadowWorkers
		}
		v, err := lv.startVariant(ctx, &st, name, mode, share, rv, instances, canary)
		if err != nil {
			return nil, err
		}
		v.key = key
		started = append(started, v)
		return v, nil
	}
	var err error
	if a.champion, err = get(ChampionVariant, "", 0, st.Champion, nil); err != nil {
		return fail(err)
	}
	var cum float64
	for _, c := range st.Challengers {
		v, err := get(c.Name, c.Mode, c.Share, c.Variant, c.Canary)
		if err != nil {
			return fail(fmt.Errorf("challenger %q: %w", c.Name, err))
		}
		switch c.Mode {
		case registry.ModeSplit:
			cum += c.Share
			a.splits = append(a.splits, v)
			a.splitEnd = append(a.splitEnd, threshold(cum))
		case registry.ModeShadow:
			p := threshold(c.Share)
			a.shadows = append(a.shadows, v)
			a.shadowP = append(a.shadowP, p)
			a.anyShade = max(a.anyShade, p)
			k := pairKey{st.Name, a.champion.key, v.key}
			pair := lv.pairs[k]
			if pair == nil {
				pair = new(compare.Pair)
				lv.pairs[k] = pair
			}
			a.pairs = append(a.pairs, pair)
		}
	}
	return a, nil
}

// startVariant starts one variant: a native stage, or a plugin from the registry's module
// cache, started with its params and the stage's deadline, warmed (every instance
// created) and smoke-called with those params. Nothing is compiled or started on the
// request path.
func (lv *Live) startVariant(ctx context.Context, st *registry.Stage, name, mode string, share float64, rv registry.Variant, instances int, canary *registry.Canary) (*variant, error) {
	kind, _ := pipeline.ParseKind(st.Kind)
	v := &variant{name: name, mode: mode, share: share, version: rv.Version, label: variantLabel(st.Name, name)}
	span := lv.cfg.StatsWindow
	if canary != nil {
		c := canary.WithDefaults()
		v.canary = &c
		span = time.Duration(c.Window)
	}
	v.win = compare.NewWindow(span)
	if native, ok := strings.CutPrefix(rv.Version, registry.NativePrefix); ok {
		stage, err := lv.e.nativeStage(st.Name, native, kind, rv.Params)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", registry.ErrInvalid, err)
		}
		v.stage = stage
		v.info = stage.Info()
	} else {
		mod, release, err := lv.reg.Acquire(ctx, rv.Version)
		if err != nil {
			return nil, err
		}
		pl, err := mod.Start(ctx, plugin.PluginConfig{Params: rv.Params, Timeout: st.DeadlineDuration(), Instances: instances})
		if err != nil {
			release()
			return nil, fmt.Errorf("%w: cannot start %s with these params: %v", registry.ErrInvalid, short(rv.Version), err)
		}
		v.pl, v.release = pl, release
		if err := pl.Warm(ctx); err != nil {
			v.close()
			return nil, fmt.Errorf("%w: cannot warm %s: %v", registry.ErrInvalid, short(rv.Version), err)
		}
		if err := registry.Smoke(ctx, pl, 64); err != nil {
			v.close()
			return nil, fmt.Errorf("%w: %s with these params: %v", registry.ErrInvalid, short(rv.Version), err)
		}
		ps, err := stages.NewPluginStage(st.Name, pl, lv.e.Sources())
		if err != nil {
			v.close()
			return nil, fmt.Errorf("%w: %v", registry.ErrInvalid, err)
		}
		v.stage = ps
		v.info = ps.Info()
	}
	v.info.Name, v.info.Kind, v.info.Variant = st.Name, kind, name
	return v, nil
}

// short returns the form of a version shown to people: 12 hex digits, or a native name.
func short(v string) string {
	if registry.IsNative(v) {
		return v
	}
	return stages.ShortVersion(v)
}

// prunePairs forgets comparison statistics no published assignment refers to. Call with
// lv.mu held.
func (lv *Live) prunePairs() {
	t := lv.tmpl.Load()
	if t == nil {
		return
	}
	used := map[*compare.Pair]bool{}
	for _, s := range t.slots {
		if a := s.cur.Load(); a != nil {
			for _, p := range a.pairs {
				used[p] = true
			}
		}
	}
	for k, p := range lv.pairs {
		if !used[p] {
			delete(lv.pairs, k)
		}
	}
}

// findSlot returns the slot of the named stage, or nil.
func (lv *Live) findSlot(name string) *slot {
	for _, s := range lv.tmpl.Load().slots {
		if s.name == name {
			return s
		}
	}
	return nil
}

// StageUpdate is a change to one stage (PUT /admin/stages/{stage}). Nil fields keep their
// current value; versions may be given as unique prefixes of at least 6 hex digits.
type StageUpdate struct {
	// Kind is needed only to create a stage; it defaults to the champion plugin's kind.
	Kind string `json:"kind,omitempty"`
	// Champion, if set, becomes the champion; the current one goes to the rollback
	// history (unless it is the same version and params).
	Champion *registry.Variant `json:"champion,omitempty"`
	// Challengers, if set, replaces the challengers (an empty list removes them).
	Challengers *[]registry.Challenger `json:"challengers,omitempty"`
	Deadline    *registry.Duration     `json:"deadline,omitempty"`
	Fallback    *string                `json:"fallback,omitempty"`
	Cut         *int                   `json:"cut,omitempty"`
	Salt        *string                `json:"salt,omitempty"`
	// Revision, if not zero, is the revision the caller read; the update fails with
	// registry.ErrConflict if the stage changed since.
	Revision uint64 `json:"revision,omitempty"`
}

// SetStage applies u to the named stage (creating it if u has a champion and the stage
// does not exist): it starts and warms whatever is new, smoke-calls it, records the
// change in the registry, then swaps it in atomically. Requests in flight finish on what
// they started with; what is no longer used is closed once they have. On error nothing
// changes. It returns the stage's new status.
func (lv *Live) SetStage(ctx context.Context, name string, u StageUpdate, caller string) (StageStatus, error) {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	if lv.closed {
		return StageStatus{}, ErrLiveClosed
	}
	s := lv.findSlot(name)
	var st registry.Stage
	var prev *assignment
	if s != nil {
		prev = s.cur.Load()
		st = prev.st.Clone()
		if u.Kind != "" && u.Kind != st.Kind {
			return StageStatus{}, fmt.Errorf("%w: stage %q is a %s stage, not %s", registry.ErrInvalid, name, st.Kind, u.Kind)
		}
	} else {
		if u.Champion == nil {
			return StageStatus{}, fmt.Errorf("%w: no stage %q; to create it, give a champion", registry.ErrNotFound, name)
		}
		st = registry.Stage{Name: name, Kind: u.Kind}
	}
	now := time.Now().UTC()
	ev := registry.Event{Caller: caller, Action: registry.ActionSettings}
	if u.Champion != nil {
		c := *u.Champion
		v, err := lv.reg.Resolve(c.Version)
		if err != nil {
			return StageStatus{}, err
		}
		c.Version, c.Since = v, now
		if st.Kind == "" {
			if p, err := lv.reg.Plugin(v); err == nil {
				st.Kind = string(p.Kind)
			} else {
				st.Kind = "rank"
			}
		}
		if s == nil || !st.Champion.Same(c) {
			if s != nil {
				st.History = append(st.History, st.Champion)
			}
			ev.Action, ev.Version = registry.ActionActivate, v
			ev.Detail = "previous champion " + short(st.Champion.Version)
			if s == nil {
				ev.Detail = "new stage"
			}
			st.Champion = c
		}
	}
	if u.Challengers != nil {
		cs := slices.Clone(*u.Challengers)
		old := map[string]registry.Challenger{}
		for _, c := range st.Challengers {
			old[c.Name] = c
		}
		for i := range cs {
			v, err := lv.reg.Resolve(cs[i].Version)
			if err != nil {
				return StageStatus{}, fmt.Errorf("challenger %q: %w", cs[i].Name, err)
			}
			cs[i].Version = v
			if o, ok := old[cs[i].Name]; ok && o.Variant.Same(cs[i].Variant) && o.Mode == cs[i].Mode {
				cs[i].Since = o.Since
			} else {
				cs[i].Since = now
			}
		}
		st.Challengers = cs
		if ev.Action == registry.ActionSettings {
			ev.Action = registry.ActionChallengers
			var names []string
			for _, c := range cs {
				names = append(names, fmt.Sprintf("%s=%s %s %g", c.Name, short(c.Version), c.Mode, c.Share))
			}
			ev.Detail = strings.Join(names, ", ")
			if len(cs) == 0 {
				ev.Detail = "none"
			}
		}
	}
	if u.Deadline != nil {
		st.Deadline = *u.Deadline
	}
	if u.Fallback != nil {
		st.Fallback = *u.Fallback
	}
	if u.Cut != nil {
		st.Cut = *u.Cut
	}
	if u.Salt != nil {
		st.Salt = *u.Salt
	}
	if len(st.History) > registry.MaxHistory {
		st.History = st.History[len(st.History)-registry.MaxHistory:]
	}
	return lv.apply(ctx, s, st, prev, u.Revision, ev)
}

// apply builds st, records it and swaps it in. Call with lv.mu held.
func (lv *Live) apply(ctx context.Context, s *slot, st registry.Stage, prev *assignment, expect uint64, ev registry.Event) (StageStatus, error) {
	if err := lv.reg.CheckStage(&st); err != nil {
		return StageStatus{}, err
	}
	if prev != nil && expect != 0 && prev.st.Revision != expect {
		return StageStatus{}, fmt.Errorf("%w: stage %q is at revision %d, not %d; read it again and retry", registry.ErrConflict, st.Name, prev.st.Revision, expect)
	}
	isNew := s == nil
	if isNew {
		s = &slot{name: st.Name}
		s.kind, _ = pipeline.ParseKind(st.Kind)
	}
	t0 := time.Now()
	a, err := lv.build(ctx, s, st, prev)
	if err != nil {
		return StageStatus{}, err
	}
	var expectReg uint64
	if prev != nil {
		expectReg = prev.st.Revision
	}
	stored, err := lv.reg.SetStage(st, expectReg, ev)
	if err != nil {
		lv.discard(a, prev)
		return StageStatus{}, err
	}
	a.st = stored
	lv.publish(s, a)
	if isNew {
		lv.addSlot(s)
	}
	lv.prunePairs()
	lv.swaps.Add(1)
	lv.log.Info("engine: stage changed", "stage", st.Name, "action", ev.Action, "champion", short(stored.Champion.Version),
		"challengers", len(stored.Challengers), "revision", stored.Revision, "caller", ev.Caller, "took", time.Since(t0).Round(time.Microsecond))
	return lv.status(s), nil
}

// discard closes the variants of an unpublished assignment that prev does not share.
func (lv *Live) discard(a, prev *assignment) {
	shared := map[*variant]bool{}
	if prev != nil {
		for _, v := range prev.variants() {
			shared[v] = true
		}
	}
	for _, v := range a.variants() {
		if !shared[v] {
			v.close()
		}
	}
}

// addSlot inserts a new slot in pipeline order (after the last stage of its kind).
func (lv *Live) addSlot(s *slot) {
	old := lv.tmpl.Load().slots
	at := len(old)
	for i, o := range old {
		if o.kind > s.kind {
			at = i
			break
		}
	}
	lv.tmpl.Store(&liveTemplate{slots: slices.Insert(slices.Clone(old), at, s)})
}

// Rollback makes the stage's previous champion the champion again (popping the rollback
// history); the challengers stay. It fails with registry.ErrConflict if there is no
// previous champion.
func (lv *Live) Rollback(ctx context.Context, name, caller string) (StageStatus, error) {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	if lv.closed {
		return StageStatus{}, ErrLiveClosed
	}
	s := lv.findSlot(name)
	if s == nil {
		return StageStatus{}, fmt.Errorf("%w: no stage %q", registry.ErrNotFound, name)
	}
	prev := s.cur.Load()
	st := prev.st.Clone()
	if len(st.History) == 0 {
		return StageStatus{}, fmt.Errorf("%w: stage %q has no previous champion to roll back to", registry.ErrConflict, name)
	}
	back := st.History[len(st.History)-1]
	st.History = st.History[:len(st.History)-1]
	from := st.Champion.Version
	back.Since = time.Now().UTC()
	st.Champion = back
	ev := registry.Event{Action: registry.ActionRollback, Version: back.Version, Caller: caller,
		Detail: fmt.Sprintf("from %s to %s", short(from), short(back.Version))}
	res, err := lv.apply(ctx, s, st, prev, 0, ev)
	if err == nil {
		lv.rollbacks.Add(1)
	}
	return res, err
}

// removeChallenger drops a challenger from a stage, recording action and reason. Call
// with lv.mu held.
func (lv *Live) removeChallenger(ctx context.Context, s *slot, name, action, reason string) error {
	prev := s.cur.Load()
	st := prev.st.Clone()
	i := slices.IndexFunc(st.Challengers, func(c registry.Challenger) bool { return c.Name == name })
	if i < 0 {
		return fmt.Errorf("%w: stage %q has no challenger %q", registry.ErrNotFound, s.name, name)
	}
	version := st.Challengers[i].Version
	st.Challengers = slices.Delete(st.Challengers, i, i+1)
	_, err := lv.apply(ctx, s, st, prev, 0, registry.Event{Action: action, Version: version, Caller: "canary", Detail: name + ": " + reason})
	return err
}

// Push stores a plugin version in the registry after validating it (registry.Push).
func (lv *Live) Push(ctx context.Context, wasm []byte, caller string) (registry.Plugin, bool, error) {
	return lv.reg.Push(ctx, wasm, caller)
}

// DeletePlugin removes a stored version that no stage uses (registry.Delete).
func (lv *Live) DeletePlugin(ctx context.Context, ref, caller string) (registry.Plugin, error) {
	return lv.reg.Delete(ctx, ref, caller)
}

// Events returns the newest n events of the registry's log (all if n <= 0).
func (lv *Live) Events(n int) []registry.Event { return lv.reg.Events(n) }
