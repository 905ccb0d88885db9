package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/podium-rank/podium/sdk/abi"
)

// PluginConfig configures one started plugin (a stage's use of a Module).
type PluginConfig struct {
	// Params override the manifest's default params, top-level key by key: a JSON object,
	// or empty. The keys "features" and "attributes" also change the plugin's inputs (see
	// sdk/ABI.md §2).
	Params json.RawMessage
	// Timeout is the deadline of one call; a context deadline that comes sooner wins.
	// Zero means DefaultTimeout. Race-detector builds multiply it by 10 (race.go).
	Timeout time.Duration
	// InitTimeout is the deadline of starting one instance (_initialize and podium_init).
	// Zero means DefaultInitTimeout.
	InitTimeout time.Duration
	// Instances is the size of the pool: at most this many calls run at once. Zero means
	// GOMAXPROCS.
	Instances int
	// MemoryLimitPages caps each instance's linear memory, in 64 KiB pages; a
	// memory.grow past it fails and the call is a FaultMemory. Zero means the Runtime's
	// Config.MemoryLimitPages.
	MemoryLimitPages uint32
}

// Plugin is a Module started with params: a pool of instances serving stage calls. Call is
// goroutine-safe; no instance ever runs two calls at once. Retire a Plugin with Drain and
// then Close.
type Plugin struct {
	mod        *Module
	kind       abi.Kind
	features   []string
	attributes []string
	needs      abi.Needs
	params     []byte
	timeout    time.Duration
	initTO     time.Duration
	size       int
	memPages   uint32

	idle      chan *instance
	mu        sync.Mutex
	live      int                    // instances created and not closed, including ones starting
	instances map[*instance]struct{} // started instances, for Stats
	draining  atomic.Bool
	inflight  atomic.Int64
	closed    bool // under mu
	closedA   atomic.Bool
	bg        sync.WaitGroup // replacement instances starting in the background

	calls      atomic.Uint64
	faults     [NumFaultKinds]atomic.Uint64
	started    atomic.Uint64
	discarded  atomic.Uint64
	logLines   atomic.Uint64
	logDropped atomic.Uint64
}

// Start validates params and starts a Plugin: it merges params over the manifest's
// defaults, creates one instance (running _initialize and podium_init, which must
// succeed) and returns the Plugin; the other instances are created when calls need them,
// or by Warm. On error nothing is left open.
func (m *Module) Start(ctx context.Context, cfg PluginConfig) (*Plugin, error) {
	params, features, attributes, err := MergeParams(m.manifest, cfg.Params)
	if err != nil {
		return nil, err
	}
	p := &Plugin{
		mod:        m,
		kind:       m.manifest.Kind,
		features:   features,
		attributes: attributes,
		needs:      m.manifest.Needs,
		params:     params,
		timeout:    cfg.Timeout,
		initTO:     cfg.InitTimeout,
		size:       cfg.Instances,
	}
	p.needs.Attributes = attributes
	if p.timeout <= 0 {
		p.timeout = DefaultTimeout
	}
	p.timeout *= raceSlowdown
	if p.initTO <= 0 {
		p.initTO = DefaultInitTimeout
	}
	if p.size <= 0 {
		p.size = runtime.GOMAXPROCS(0)
	}
	p.memPages = cfg.MemoryLimitPages
	if p.memPages == 0 || p.memPages > 65536 {
		p.memPages = m.rt.cfg.MemoryLimitPages
	}
	p.idle = make(chan *instance, p.size)
	p.instances = make(map[*instance]struct{})
	if err := m.attach(p); err != nil {
		return nil, err
	}
	p.live = 1
	inst, err := p.newInstance(ctx)
	if err != nil {
		p.live = 0
		p.closed = true
		m.detach(p)
		return nil, err
	}
	p.idle <- inst
	return p, nil
}

// MergeParams returns the params JSON an instance of a plugin with manifest m receives when
// started with override, and the effective feature and attribute lists (sdk/ABI.md §2).
// Native twins of plugins use it to see exactly what the Wasm build sees.
func MergeParams(m abi.Manifest, override json.RawMessage) ([]byte, []string, []string, error) {
	merged := map[string]json.RawMessage{}
	if len(m.Params) > 0 {
		if err := json.Unmarshal(m.Params, &merged); err != nil {
			return nil, nil, nil, fmt.Errorf("%w: manifest params: %v", ErrParams, err)
		}
	}
	if len(bytes.TrimSpace(override)) > 0 {
		var o map[string]json.RawMessage
		if err := json.Unmarshal(override, &o); err != nil || o == nil {
			return nil, nil, nil, fmt.Errorf("%w: params of plugin %q must be a JSON object", ErrParams, m.Name)
		}
		for k, v := range o {
			merged[k] = v
		}
	}
	features, attributes := m.Features, m.Needs.Attributes
	for _, f := range []struct {
		key  string
		dst  *[]string
		what string
	}{{"features", &features, "feature"}, {"attributes", &attributes, "attribute"}} {
		raw, ok := merged[f.key]
		if !ok {
			continue
		}
		var names []string
		if err := json.Unmarshal(raw, &names); err != nil {
			return nil, nil, nil, fmt.Errorf("%w: %s of plugin %q must be a list of names", ErrParams, f.key, m.Name)
		}
		if err := abi.CheckNames(f.what, names); err != nil {
			return nil, nil, nil, fmt.Errorf("%w: plugin %q: %v", ErrParams, m.Name, err)
		}
		*f.dst = names
	}
	features, attributes = slices.Clone(features), slices.Clone(attributes)
	if features == nil {
		features = []string{}
	}
	if attributes == nil {
		attributes = []string{}
	}
	merged["features"], _ = json.Marshal(features)
	merged["attributes"], _ = json.Marshal(attributes)
	out, err := json.Marshal(merged)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %v", ErrParams, err)
	}
	return out, features, attributes, nil
}

// Module returns the module the plugin was started from.
func (p *Plugin) Module() *Module { return p.mod }

// Name returns the plugin's manifest name.
func (p *Plugin) Name() string { return p.mod.manifest.Name }

// Version returns the plugin version, the hex sha256 of its .wasm.
func (p *Plugin) Version() string { return p.mod.version }

// Kind returns the stage kind.
func (p *Plugin) Kind() abi.Kind { return p.kind }

// Features returns the feature columns the plugin reads, in Input.Features order. The
// caller must not modify the slice.
func (p *Plugin) Features() []string { return p.features }

// Attributes returns the attribute columns the plugin reads, in Input.Attrs order. The
// caller must not modify the slice.
func (p *Plugin) Attributes() []string { return p.attributes }

// Needs returns what else the plugin reads (embeddings, string ids); Attributes is the
// effective list.
func (p *Plugin) Needs() abi.Needs { return p.needs }

// Params returns the params JSON every instance was initialised with.
func (p *Plugin) Params() json.RawMessage { return slices.Clone(p.params) }

// MemoryLimitPages returns the memory limit of each instance, in 64 KiB pages.
func (p *Plugin) MemoryLimitPages() uint32 { return p.memPages }

// Timeout returns the deadline of one call.
func (p *Plugin) Timeout() time.Duration { return p.timeout }

// Warm creates instances until the pool is full, so that no call pays for starting one.
func (p *Plugin) Warm(ctx context.Context) error {
	for {
		p.mu.Lock()
		if p.closed || p.draining.Load() {
			p.mu.Unlock()
			return ErrDraining
		}
		if p.live >= p.size {
			p.mu.Unlock()
			return nil
		}
		p.live++
		p.mu.Unlock()
		inst, err := p.newInstance(ctx)
		if err != nil {
			p.mu.Lock()
			p.live--
			p.mu.Unlock()
			return err
		}
		p.put(inst)
	}
}

// Call runs the plugin on one request. It copies in into an instance's memory, calls the
// guest once under the deadline, checks the outputs and fills out. A plugin failure is a
// *FaultError (the instance is discarded unless the kind is FaultStatus) and counted; an
// Input that does not fit the plugin wraps ErrInput; after Drain, ErrDraining. With a
// reused Output and pool warm, Call does not allocate.
func (p *Plugin) Call(ctx context.Context, in *Input, out *Output) error {
	shape, err := p.shape(in)
	if err != nil {
		return err
	}
	h, err := abi.NewHeader(p.kind, in.K, shape)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInput, err)
	}
	p.inflight.Add(1)
	defer p.inflight.Add(-1)
	if p.draining.Load() {
		return ErrDraining
	}
	timeout := p.timeout
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		if left <= 0 {
			return ctx.Err()
		}
		timeout = min(timeout, left)
	}
	inst, err := p.get(ctx)
	if err != nil {
		return err
	}
	p.calls.Add(1)
	if err := inst.run(&h, in, out, timeout); err != nil {
		var fe *FaultError
		if errors.As(err, &fe) {
			p.faults[fe.Kind].Add(1)
			if fe.Kind == FaultStatus {
				p.put(inst)
			} else {
				p.discard(inst)
			}
		} else {
			p.discard(inst)
		}
		return err
	}
	p.put(inst)
	return nil
}

// get returns an idle instance, creating one if the pool is not full, else waiting.
func (p *Plugin) get(ctx context.Context) (*instance, error) {
	select {
	case inst := <-p.idle:
		return inst, nil
	default:
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrDraining
	}
	if p.live < p.size {
		p.live++
		p.mu.Unlock()
		inst, err := p.newInstance(context.WithoutCancel(ctx))
		if err != nil {
			p.mu.Lock()
			p.live--
			p.mu.Unlock()
			var fe *FaultError
			if errors.As(err, &fe) {
				p.faults[FaultInit].Add(1)
				return nil, &FaultError{Kind: FaultInit, Plugin: p.Name(), Version: p.Version(), Detail: "cannot start an instance", Err: err}
			}
			return nil, err
		}
		return inst, nil
	}
	p.mu.Unlock()
	select {
	case inst := <-p.idle:
		return inst, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// put returns an instance to the pool. If the plugin was closed meanwhile (a Close whose
// Drain gave up), it sweeps the pool so the instance does not leak.
func (p *Plugin) put(inst *instance) {
	p.idle <- inst
	if p.closedA.Load() {
		p.sweep()
	}
}

// sweep closes every idle instance.
func (p *Plugin) sweep() {
	for {
		select {
		case inst := <-p.idle:
			p.release(inst)
		default:
			return
		}
	}
}

// discard throws away an instance after a fault and starts a replacement in the
// background, so that the next call does not pay for instantiation (a Go guest takes
// milliseconds).
func (p *Plugin) discard(inst *instance) {
	p.release(inst)
	p.discarded.Add(1)
	p.mu.Lock()
	if p.closed || p.draining.Load() || p.live >= p.size || !p.mod.rt.bgAdd() {
		p.mu.Unlock()
		return
	}
	p.live++
	p.bg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.mod.rt.bg.Done()
		defer p.bg.Done()
		inst, err := p.newInstance(context.Background())
		if err != nil {
			p.faults[FaultInit].Add(1)
			p.mu.Lock()
			p.live--
			p.mu.Unlock()
			return
		}
		p.put(inst)
	}()
}

// release closes an instance and forgets it.
func (p *Plugin) release(inst *instance) {
	inst.close()
	p.mu.Lock()
	p.live--
	delete(p.instances, inst)
	p.mu.Unlock()
}

// Drain stops handing out instances (Call returns ErrDraining from now on) and waits
// until the calls in flight have finished, or ctx is done.
func (p *Plugin) Drain(ctx context.Context) error {
	if p == nil {
		return nil
	}
	p.draining.Store(true)
	for p.inflight.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Microsecond):
		}
	}
	return nil
}

// Close drains the plugin and closes its instances. It is safe to call on a nil Plugin,
// more than once, and after a failed Start (which returns nil).
func (p *Plugin) Close(ctx context.Context) error {
	if p == nil {
		return nil
	}
	err := p.Drain(ctx)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return err
	}
	p.closed = true
	p.closedA.Store(true)
	p.mu.Unlock()
	p.bg.Wait() // a replacement still starting lands in the pool, and the sweep closes it
	p.sweep()
	p.mod.detach(p)
	return err
}

// Stats is a snapshot of a plugin's counters. Counters only grow, except Instances.
type Stats struct {
	Name    string
	Version string
	// Calls counts the calls that reached a guest.
	Calls uint64
	// Faults counts failed calls by kind (index with a FaultKind).
	Faults [NumFaultKinds]uint64
	// Instances is the number of live instances now.
	Instances int
	// InstancesStarted and InstancesDiscarded count instances created and thrown away
	// after a fault.
	InstancesStarted   uint64
	InstancesDiscarded uint64
	// LogLines counts log lines delivered; LogDropped counts lines dropped by the bounds.
	LogLines   uint64
	LogDropped uint64
	// MemoryBytes is the linear memory of the live instances, as of their last call.
	MemoryBytes uint64
}

// Fault returns the count of faults of kind k.
func (s *Stats) Fault(k FaultKind) uint64 { return s.Faults[k] }

func (s *Stats) add(o Stats) {
	s.Calls += o.Calls
	for i := range s.Faults {
		s.Faults[i] += o.Faults[i]
	}
	s.Instances += o.Instances
	s.InstancesStarted += o.InstancesStarted
	s.InstancesDiscarded += o.InstancesDiscarded
	s.LogLines += o.LogLines
	s.LogDropped += o.LogDropped
	s.MemoryBytes += o.MemoryBytes
}

// Stats returns a snapshot of the plugin's counters. It is goroutine-safe.
func (p *Plugin) Stats() Stats {
	s := Stats{
		Name:               p.Name(),
		Version:            p.Version(),
		Calls:              p.calls.Load(),
		InstancesStarted:   p.started.Load(),
		InstancesDiscarded: p.discarded.Load(),
		LogLines:           p.logLines.Load(),
		LogDropped:         p.logDropped.Load(),
	}
	for i := range s.Faults {
		s.Faults[i] = p.faults[i].Load()
	}
	p.mu.Lock()
	s.Instances = p.live
	for inst := range p.instances {
		s.MemoryBytes += inst.memBytes.Load()
	}
	p.mu.Unlock()
	return s
}
