package plugin

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/podium-rank/podium/engine/plugin/internal/interrupt"
	"github.com/podium-rank/podium/sdk/abi"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"
)

// instance is one instantiated guest. It belongs to one goroutine at a time: the pool
// hands it out and takes it back. Only state and deadline are shared with the watchdog.
type instance struct {
	p      *Plugin
	rt     *Runtime
	mod    api.Module
	mem    api.Memory
	call   api.Function
	buffer api.Function
	stop   api.MutableGlobal
	ctx    context.Context // carries the instance to host functions

	buf, bufCap uint32
	stack       [2]uint64
	seq         uint64

	state    atomic.Uint64 // seq<<2 | phase
	deadline atomic.Int64  // runtime nanos; valid while phase is running

	// Log budget of the current call or init, and the tail of stderr for fault details.
	logLines, logBytes int
	stderr             []byte

	seen []uint32 // duplicate detection for orders, stamped with gen
	gen  uint32

	lm       linearMemory
	memBytes atomic.Uint64 // linear memory size after the last call, for Stats
}

const (
	phaseIdle    = 0
	phaseRunning = 1
	phaseStopped = 2
)

type instanceKey struct{}

// instanceOf returns the instance a host function was called from.
func instanceOf(ctx context.Context) *instance {
	inst, _ := ctx.Value(instanceKey{}).(*instance)
	return inst
}

// newInstance instantiates the module and runs _initialize, the ABI version check and
// podium_init with the plugin's params, each under the init deadline.
func (p *Plugin) newInstance(ctx context.Context) (*instance, error) {
	r := p.mod.rt
	inst := &instance{p: p, rt: r}
	inst.lm.limit = uint64(p.memPages) << 16
	inst.ctx = context.WithValue(context.WithoutCancel(ctx), instanceKey{}, inst)
	inst.ctx = experimental.WithMemoryAllocator(inst.ctx, newAllocator(&inst.lm))
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions(). // _initialize runs below, under a deadline
		WithStdout(guestWriter{inst, abi.LogInfo}).
		WithStderr(guestWriter{inst, abi.LogWarn})
	if p.needs.Clock && r.cfg.AllowClock {
		cfg = cfg.WithSysWalltime().WithSysNanotime().WithSysNanosleep()
	}
	mod, err := r.rt.InstantiateModule(inst.ctx, p.mod.compiled, cfg)
	if err != nil {
		return nil, p.fault(FaultInit, "cannot instantiate", err, nil)
	}
	inst.mod = mod
	inst.mem = mod.Memory()
	inst.call = mod.ExportedFunction(abi.ExportCall)
	inst.buffer = mod.ExportedFunction(abi.ExportBuffer)
	inst.stop = mod.ExportedGlobal(interrupt.StopGlobal).(api.MutableGlobal)
	if err := r.register(inst); err != nil {
		mod.Close(ctx)
		return nil, err
	}
	if err := inst.start(); err != nil {
		inst.close()
		return nil, err
	}
	inst.memBytes.Store(uint64(inst.mem.Size()))
	p.started.Add(1)
	p.mu.Lock()
	p.instances[inst] = struct{}{}
	p.mu.Unlock()
	return inst, nil
}

func (inst *instance) start() error {
	p := inst.p
	inst.resetLog()
	if f := inst.mod.ExportedFunction(abi.ExportInitialize); f != nil {
		if _, err := inst.invoke(f, p.initTO, 0, 0); err != nil {
			return p.fault(FaultInit, "_initialize failed", err, inst)
		}
	}
	v, err := inst.invoke(inst.mod.ExportedFunction(abi.ExportABIVersion), p.initTO, 0, 0)
	if err != nil {
		return p.fault(FaultInit, "podium_abi_version failed", err, inst)
	}
	if int32(v) != abi.Version {
		return &ABIVersionError{Plugin: p.Name(), Got: int(int32(v)), Want: abi.Version, Where: "podium_abi_version export"}
	}
	if err := inst.ensureBuffer(len(p.params)); err != nil {
		return err
	}
	b, _ := inst.mem.Read(inst.buf, uint32(len(p.params)))
	copy(b, p.params)
	status, err := inst.invoke(inst.mod.ExportedFunction(abi.ExportInit), p.initTO, uint64(inst.buf), uint64(len(p.params)))
	if err != nil {
		return p.fault(FaultInit, "podium_init failed", err, inst)
	}
	if status != 0 {
		return p.fault(FaultInit, fmt.Sprintf("podium_init returned %d", int32(status)), nil, inst)
	}
	return nil
}

// errStopped is the error of a call the watchdog stopped.
var errStopped = errors.New("stopped at its deadline")

// invoke calls f(a, b) under a deadline and returns its first result. A call stopped by
// the watchdog returns errStopped, whatever the guest did.
func (inst *instance) invoke(f api.Function, timeout time.Duration, a, b uint64) (uint32, error) {
	inst.seq++
	running := inst.seq<<2 | phaseRunning
	inst.deadline.Store(inst.rt.now() + int64(timeout))
	inst.state.Store(running)
	inst.rt.wake()
	inst.stack[0], inst.stack[1] = a, b
	err := f.CallWithStack(inst.ctx, inst.stack[:])
	if !inst.state.CompareAndSwap(running, inst.seq<<2|phaseIdle) {
		return 0, errStopped
	}
	return uint32(inst.stack[0]), err
}

// running reports whether the instance is in a guest call.
func (inst *instance) running() bool { return inst.state.Load()&3 == phaseRunning }

// checkDeadline stops the instance if its call is past the deadline. It runs on the
// watchdog goroutine and reports whether the instance is in a call.
func (inst *instance) checkDeadline(now int64) bool {
	s := inst.state.Load()
	if s&3 != phaseRunning {
		return false
	}
	if now > inst.deadline.Load() && inst.state.CompareAndSwap(s, s&^3|phaseStopped) {
		inst.stop.Set(1) // the guest traps within interrupt.FuelPeriod loop iterations
	}
	return true
}

// ensureBuffer makes the guest buffer at least size bytes.
func (inst *instance) ensureBuffer(size int) error {
	if uint32(size) <= inst.bufCap && size >= 0 {
		return nil
	}
	want := max(uint64(size), 2*uint64(inst.bufCap), 4096)
	want = (want + 0xffff) &^ 0xffff
	if want > 1<<31-1 {
		want = uint64(size)
	}
	addr, err := inst.invoke(inst.buffer, inst.p.initTO, want, 0)
	if err != nil {
		return inst.p.fault(FaultTrap, fmt.Sprintf("podium_buffer(%d) failed", want), err, inst)
	}
	if addr == 0 {
		return inst.p.fault(FaultMemory, fmt.Sprintf("podium_buffer(%d) returned 0", want), nil, inst)
	}
	if addr%abi.Align != 0 || uint64(addr)+want > uint64(inst.mem.Size()) {
		return inst.p.fault(FaultBadOutput, fmt.Sprintf("podium_buffer(%d) returned %#x, misaligned or outside the %d-byte memory", want, addr, inst.mem.Size()), nil, inst)
	}
	inst.buf, inst.bufCap = addr, uint32(want)
	return nil
}

// run performs one stage call on the instance.
func (inst *instance) run(h *abi.Header, in *Input, out *Output, timeout time.Duration) error {
	p := inst.p
	inst.resetLog()
	inst.lm.refused = false
	size := h.Len()
	if err := inst.ensureBuffer(size); err != nil {
		return err
	}
	b, ok := inst.mem.Read(inst.buf, uint32(size))
	if !ok {
		return p.fault(FaultMemory, "the guest buffer is outside memory", nil, inst)
	}
	p.encode(b, h, in)
	status, err := inst.invoke(inst.call, timeout, uint64(inst.buf), uint64(size))
	if err != nil {
		if errors.Is(err, errStopped) {
			return p.fault(FaultTimeout, fmt.Sprintf("stopped after its %v deadline", timeout), nil, inst)
		}
		if inst.lm.refused {
			return p.fault(FaultMemory, fmt.Sprintf("memory.grow refused at the %d-page limit", p.memPages), err, inst)
		}
		var exit *sys.ExitError
		if errors.As(err, &exit) {
			return p.fault(FaultTrap, fmt.Sprintf("exited with code %d", exit.ExitCode()), nil, inst)
		}
		return p.fault(FaultTrap, "trapped", err, inst)
	}
	if inst.lm.refused {
		return p.fault(FaultMemory, fmt.Sprintf("memory.grow refused at the %d-page limit", p.memPages), nil, inst)
	}
	if status != 0 {
		return p.fault(FaultStatus, fmt.Sprintf("podium_call returned %d", int32(status)), nil, inst)
	}
	// The memory may have grown and moved during the call: take a fresh view.
	if b, ok = inst.mem.Read(inst.buf, uint32(size)); !ok {
		return p.fault(FaultMemory, "the guest buffer is outside memory", nil, inst)
	}
	inst.memBytes.Store(uint64(inst.mem.Size()))
	if msg := p.decode(b, h, out, inst); msg != "" {
		return p.fault(FaultBadOutput, msg, nil, inst)
	}
	return nil
}

// nextGen returns a fresh stamp for seen, sized for n candidates.
func (inst *instance) nextGen(n int) uint32 {
	if len(inst.seen) < n {
		inst.seen = make([]uint32, n)
		inst.gen = 0
	}
	inst.gen++
	if inst.gen == 0 {
		clear(inst.seen)
		inst.gen = 1
	}
	return inst.gen
}

func (inst *instance) close() {
	inst.rt.unregister(inst)
	inst.mod.Close(context.Background())
}

// fault builds a *FaultError, with the tail of the guest's stderr if there is one.
func (p *Plugin) fault(kind FaultKind, detail string, err error, inst *instance) error {
	if inst != nil && len(inst.stderr) > 0 {
		detail += " (stderr: " + string(inst.stderr) + ")"
	}
	return &FaultError{Kind: kind, Plugin: p.Name(), Version: p.Version(), Detail: detail, Err: err}
}
