package plugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/podium-rank/podium/sdk/abi"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Config configures a Runtime. The zero value is usable.
type Config struct {
	// CacheDir is the directory of wazero's on-disk compilation cache. Empty means no disk
	// cache: every Runtime compiles from scratch (a Go guest takes about a second).
	CacheDir string
	// MemoryLimitPages is the default cap of each instance's linear memory, in 64 KiB
	// pages (PluginConfig.MemoryLimitPages overrides it per plugin). Zero means
	// DefaultMemoryLimitPages.
	MemoryLimitPages uint32
	// AllowClock lets plugins whose manifest asks for it ("needs": {"clock": true}) read
	// the real clocks through WASI. Otherwise their clocks are fake and sleeps return at
	// once.
	AllowClock bool
	// Resolver answers podium.lookup; nil answers -1 (unknown) to every lookup.
	Resolver Resolver
	// Logger receives the plugins' bounded logs; nil discards them.
	Logger *slog.Logger
	// WatchdogTick is how often the watchdog looks for calls past their deadline, so the
	// resolution of deadlines. Zero means DefaultWatchdogTick.
	WatchdogTick time.Duration
}

// Defaults for Config and PluginConfig.
const (
	DefaultMemoryLimitPages = 1024 // 64 MiB
	DefaultWatchdogTick     = time.Millisecond
	DefaultTimeout          = 50 * time.Millisecond
	DefaultInitTimeout      = 5 * time.Second
)

// Resolver maps strings to the integer codes the host passes to plugins: space is an
// attribute name (e.g. "brand"), or abi.LookupIDSpace ("id") for item ids, which map to
// dense ids. Codes must be stable for the life of the process. Implementations must be
// goroutine-safe.
type Resolver interface {
	Lookup(space, value string) (code int32, ok bool)
}

// Runtime compiles and runs plugins: one wazero runtime (compiler mode) with the host
// module "podium", sandboxed WASI, and a watchdog that stops calls past their deadline.
// It is goroutine-safe. Close it after every Module it loaded is closed.
type Runtime struct {
	cfg   Config
	rt    wazero.Runtime
	epoch time.Time

	mu        sync.Mutex
	instances map[*instance]struct{} // live instances, for the watchdog
	closed    bool
	bg        sync.WaitGroup // background instantiations; Close waits for them

	wdSleeping atomic.Bool
	wdWake     chan struct{}
	wdStop     chan struct{}
	wdDone     chan struct{}
}

// NewRuntime creates a Runtime. It fails if the compilation cache directory cannot be
// used or the host is big-endian (the ABI is little-endian and the host copies memory as
// is).
func NewRuntime(ctx context.Context, cfg Config) (*Runtime, error) {
	if one := uint16(1); *(*byte)(unsafe.Pointer(&one)) != 1 {
		return nil, errors.New("plugin: the Wasm host needs a little-endian machine")
	}
	if cfg.MemoryLimitPages == 0 {
		cfg.MemoryLimitPages = DefaultMemoryLimitPages
	}
	if cfg.MemoryLimitPages > 65536 {
		return nil, fmt.Errorf("plugin: memory limit of %d pages exceeds 4 GiB", cfg.MemoryLimitPages)
	}
	if cfg.WatchdogTick <= 0 {
		cfg.WatchdogTick = DefaultWatchdogTick
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	rc := wazero.NewRuntimeConfigCompiler().
		WithMemoryLimitPages(65536).   // limits are per plugin, see linearMemory
		WithCloseOnContextDone(false). // deadlines are enforced by metering, see interrupt
		WithCustomSections(false)
	if cfg.CacheDir != "" {
		cache, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("cannot open the compilation cache %s: %w", cfg.CacheDir, err)
		}
		rc = rc.WithCompilationCache(cache)
	}
	r := &Runtime{
		cfg:       cfg,
		rt:        wazero.NewRuntimeWithConfig(ctx, rc),
		epoch:     time.Now(),
		instances: make(map[*instance]struct{}),
		wdWake:    make(chan struct{}, 1),
		wdStop:    make(chan struct{}),
		wdDone:    make(chan struct{}),
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, r.rt); err != nil {
		r.rt.Close(ctx)
		return nil, fmt.Errorf("cannot instantiate WASI: %w", err)
	}
	if err := r.instantiateHost(ctx); err != nil {
		r.rt.Close(ctx)
		return nil, err
	}
	go r.watchdog()
	return r, nil
}

// Close stops the watchdog and closes the wazero runtime, and with it every module and
// instance still open. It is safe to call more than once.
func (r *Runtime) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	// A replacement instance starting in the background must finish (its init deadline is
	// enforced by the watchdog, so that is still running) before the runtime goes away.
	r.bg.Wait()
	close(r.wdStop)
	<-r.wdDone
	return r.rt.Close(ctx)
}

// bgAdd registers a background instantiation; it reports false once Close has begun.
// The caller runs r.bg.Done when the instantiation is over.
func (r *Runtime) bgAdd() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.bg.Add(1)
	return true
}

// now returns monotonic nanoseconds since the runtime started.
func (r *Runtime) now() int64 { return int64(time.Since(r.epoch)) }

// hostFunc describes one import of module "podium".
type hostFunc struct {
	name    string
	fn      api.GoModuleFunc
	params  []api.ValueType
	results []api.ValueType
}

func hostFuncs() []hostFunc {
	i32 := api.ValueTypeI32
	return []hostFunc{
		{abi.ImportLog, hostLog, []api.ValueType{i32, i32, i32}, nil},
		{abi.ImportLookup, hostLookup, []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}},
		{abi.ImportDot, hostDot, []api.ValueType{i32, i32, i32, i32, i32}, nil},
		{abi.ImportCosine, hostCosine, []api.ValueType{i32, i32, i32, i32, i32}, nil},
		{abi.ImportWSum, hostWSum, []api.ValueType{i32, i32, i32, i32, i32}, nil},
		{abi.ImportSigmoid, hostSigmoid, []api.ValueType{i32, i32}, nil},
	}
}

func (r *Runtime) instantiateHost(ctx context.Context) error {
	b := r.rt.NewHostModuleBuilder(abi.HostModule)
	for _, f := range hostFuncs() {
		b = b.NewFunctionBuilder().WithGoModuleFunction(f.fn, f.params, f.results).Export(f.name)
	}
	if _, err := b.Instantiate(ctx); err != nil {
		return fmt.Errorf("cannot instantiate the podium host module: %w", err)
	}
	return nil
}

// register adds a live instance to the watchdog's set.
func (r *Runtime) register(inst *instance) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	r.instances[inst] = struct{}{}
	return nil
}

func (r *Runtime) unregister(inst *instance) {
	r.mu.Lock()
	delete(r.instances, inst)
	r.mu.Unlock()
}

// wake makes sure the watchdog is ticking; it costs one atomic load when it is.
func (r *Runtime) wake() {
	if r.wdSleeping.Load() && r.wdSleeping.CompareAndSwap(true, false) {
		select {
		case r.wdWake <- struct{}{}:
		default:
		}
	}
}

// idleTicks is how many ticks without a running call put the watchdog to sleep.
const idleTicks = 1000

// watchdog stops calls that run past their deadline. It ticks every WatchdogTick while
// calls run, and sleeps when none has run for idleTicks ticks.
func (r *Runtime) watchdog() {
	defer close(r.wdDone)
	t := time.NewTicker(r.cfg.WatchdogTick)
	defer t.Stop()
	idle := 0
	for {
		select {
		case <-r.wdStop:
			return
		case <-t.C:
		}
		now := r.now()
		running := false
		r.mu.Lock()
		for inst := range r.instances {
			if inst.checkDeadline(now) {
				running = true
			}
		}
		r.mu.Unlock()
		if running {
			idle = 0
			continue
		}
		if idle++; idle < idleTicks {
			continue
		}
		// Sleep until a call wakes us. A call that started between the scan and the
		// Store sees wdSleeping false and does not wake us, so scan once more first.
		r.wdSleeping.Store(true)
		r.mu.Lock()
		for inst := range r.instances {
			if inst.running() {
				running = true
			}
		}
		r.mu.Unlock()
		if running && r.wdSleeping.CompareAndSwap(true, false) {
			idle = 0
			continue
		}
		t.Stop()
		select {
		case <-r.wdStop:
			return
		case <-r.wdWake:
			idle = 0
			t.Reset(r.cfg.WatchdogTick)
		}
	}
}
