package plugin

import (
	"context"
	"encoding/binary"
	"math"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/podium-rank/podium/engine/plugin/internal/interrupt"
	"github.com/podium-rank/podium/engine/plugin/internal/wasmtest"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// This file measures how to enforce a deadline on a guest (RATIONALE.md, "Why instrument
// loops instead of WithCloseOnContextDone?"). Each mode runs the same loop shapes:
//
//	none          no enforcement at all: the baseline, and unsafe (an infinite loop runs forever)
//	ctxdone       WithCloseOnContextDone, a context.WithTimeout per call (the documented way)
//	ctxdone-bg    WithCloseOnContextDone, a background context per call (the cost of the
//	              compiled checks alone, as with one long-lived context per instance that a
//	              watchdog cancels)
//	flag-only     a loop-header check of an exported global, set by a per-instance
//	              time.AfterFunc timer Reset and Stopped around each call. Unsafe (the guest
//	              never leaves native code, see internal/interrupt); measured for reference.
//	fuel          what engine/plugin uses: internal/interrupt's fuel counter with an exit to
//	              Go every FuelPeriod iterations, and the same timer

type deadlineMode struct {
	name       string
	closeOnCtx bool
	instrument bool
	check      interrupt.Check
	perCallCtx bool
	timer      bool
}

var deadlineModes = []deadlineMode{
	{name: "none"},
	{name: "ctxdone", closeOnCtx: true, perCallCtx: true},
	{name: "ctxdone-bg", closeOnCtx: true},
	{name: "flag-only", instrument: true, check: interrupt.CheckIf, timer: true},
	{name: "fuel-global", instrument: true, check: interrupt.CheckFuel, timer: true},
	{name: "fuel", instrument: true, check: interrupt.CheckLocal, timer: true},
}

type loopGuest struct {
	mode  deadlineMode
	mod   api.Module
	arena uint32
	stopG api.MutableGlobal
	timer *time.Timer
}

// stop makes an instrumented guest trap at its next loop header.
func (g *loopGuest) stop() { g.stopG.Set(1) }

func newLoopGuest(tb testing.TB, ctx context.Context, src string, mode deadlineMode) *loopGuest {
	tb.Helper()
	wasm := wasmtest.Build(tb, src, "")
	if mode.instrument {
		var err error
		if wasm, _, err = interrupt.InstrumentWith(wasm, mode.check); err != nil {
			tb.Fatal(err)
		}
	}
	cache, err := wazero.NewCompilationCacheWithDir(wasmtest.CacheDir(tb))
	if err != nil {
		tb.Fatal(err)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().
		WithCloseOnContextDone(mode.closeOnCtx).WithCompilationCache(cache))
	tb.Cleanup(func() { rt.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	_, err = rt.NewHostModuleBuilder("podium").NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(hostDot), []api.ValueType{api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32}, nil).
		Export("dot").Instantiate(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	mod, err := rt.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithStartFunctions("_initialize"))
	if err != nil {
		tb.Fatal(err)
	}
	res, err := mod.ExportedFunction("arena").Call(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	g := &loopGuest{mode: mode, mod: mod, arena: uint32(res[0])}
	if mode.instrument {
		g.stopG = mod.ExportedGlobal(interrupt.StopGlobal).(api.MutableGlobal)
	}
	g.timer = time.AfterFunc(time.Hour, g.stop)
	g.timer.Stop()
	return g
}

// call runs f once under the mode's deadline mechanism.
func (g *loopGuest) call(ctx context.Context, f api.Function, stack []uint64) error {
	var cancel context.CancelFunc
	if g.mode.perCallCtx {
		ctx, cancel = context.WithTimeout(ctx, time.Second)
		defer cancel()
	}
	if g.mode.timer {
		g.timer.Reset(time.Second)
		defer g.timer.Stop()
	}
	return f.CallWithStack(ctx, stack)
}

// BenchmarkDeadline runs every mode on every loop shape, interleaved call by call so that
// the noise of a shared machine hits all modes alike, and reports each mode's time per call
// and its ratio to "none" as custom metrics.
func BenchmarkDeadline(b *testing.B) {
	const n, dim = 1000, 32
	ctx := context.Background()
	for _, guest := range []struct{ name, src string }{
		{"c", "engine/plugin/testdata/loops"},
		{"go", "engine/plugin/testdata/loopsgo"},
	} {
		guests := make([]*loopGuest, len(deadlineModes))
		for i, mode := range deadlineModes {
			g := newLoopGuest(b, ctx, guest.src, mode)
			buf := make([]byte, 4*(dim+n*dim))
			for i := range dim + n*dim {
				binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(float32(i%7)*0.25))
			}
			g.mod.Memory().Write(g.arena, buf)
			guests[i] = g
		}
		for _, fn := range []string{"nop", "dot_scalar", "dot_unroll4", "dot_simd", "dot_host"} {
			if guests[0].mod.ExportedFunction(fn) == nil {
				continue
			}
			b.Run(guest.name+"/"+fn, func(b *testing.B) {
				funcs := make([]api.Function, len(guests))
				params := make([][]uint64, len(guests))
				for i, g := range guests {
					funcs[i] = g.mod.ExportedFunction(fn)
					q, rows, out := g.arena, g.arena+4*dim, g.arena+4*dim+4*n*dim
					if fn != "nop" {
						params[i] = []uint64{uint64(q), uint64(rows), n, dim, uint64(out)}
					}
				}
				stack := make([]uint64, 5)
				total := make([]time.Duration, len(guests))
				calls := 0
				for b.Loop() {
					for i, g := range guests {
						copy(stack, params[i])
						start := time.Now()
						if err := g.call(ctx, funcs[i], stack); err != nil {
							b.Fatal(err)
						}
						total[i] += time.Since(start)
					}
					calls++
				}
				for i, mode := range deadlineModes {
					b.ReportMetric(float64(total[i].Nanoseconds())/float64(calls), mode.name+"-ns")
					if i > 0 {
						b.ReportMetric(float64(total[i])/float64(total[0]), mode.name+"-x")
					}
				}
			})
		}
	}
}

// TestDeadlineModesStopSpin checks that the safe modes stop infinite loops, two at a time
// on GOMAXPROCS=2 while another goroutine forces garbage collections: a guest that cannot be
// preempted would block the stop-the-world and hang this test.
func TestDeadlineModesStopSpin(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	ctx := context.Background()
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-done:
				return
			default:
				runtime.GC()
				time.Sleep(time.Millisecond)
			}
		}
	}()
	for _, mode := range deadlineModes {
		if mode.name != "ctxdone" && mode.name != "fuel" && mode.name != "fuel-global" {
			continue
		}
		var wg sync.WaitGroup
		for range 2 {
			g := newLoopGuest(t, ctx, "engine/plugin/testdata/loops", mode)
			wg.Add(1)
			go func() {
				defer wg.Done()
				cctx := ctx
				if mode.perCallCtx {
					var cancel context.CancelFunc
					cctx, cancel = context.WithTimeout(ctx, 50*time.Millisecond)
					defer cancel()
				}
				if mode.timer {
					g.timer.Reset(50 * time.Millisecond)
				}
				start := time.Now()
				_, err := g.mod.ExportedFunction("spin").Call(cctx, 1)
				if err == nil {
					t.Errorf("%s: spin returned", mode.name)
				}
				t.Logf("%s: stopped after %v: %v", mode.name, time.Since(start).Round(time.Millisecond), err)
			}()
		}
		wg.Wait()
	}
}
