package interrupt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/podium-rank/podium/engine/plugin/internal/wasmtest"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// instantiate compiles and starts wasm with a "podium.dot" import that computes nothing.
func instantiate(t *testing.T, wasm []byte) api.Module {
	t.Helper()
	ctx := context.Background()
	cache, err := wazero.NewCompilationCacheWithDir(wasmtest.CacheDir(t))
	if err != nil {
		t.Fatal(err)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().WithCompilationCache(cache))
	t.Cleanup(func() { rt.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	i32 := api.ValueTypeI32
	_, err = rt.NewHostModuleBuilder("podium").NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(func(context.Context, api.Module, []uint64) {}), []api.ValueType{i32, i32, i32, i32, i32}, nil).
		Export("dot").Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mod, err := rt.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithStartFunctions("_initialize"))
	if err != nil {
		t.Fatal(err)
	}
	return mod
}

// dots runs the guest's dot loops on fixed data and returns all outputs.
func dots(t *testing.T, mod api.Module) []float32 {
	t.Helper()
	ctx := context.Background()
	const n, dim = 50, 32
	res, err := mod.ExportedFunction("arena").Call(ctx)
	if err != nil {
		t.Fatal(err)
	}
	arena := uint32(res[0])
	buf := make([]byte, 4*(dim+n*dim))
	for i := range dim + n*dim {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(float32(i%13)*0.1))
	}
	mod.Memory().Write(arena, buf)
	out := arena + uint32(len(buf))
	var all []float32
	for _, fn := range []string{"dot_scalar", "dot_unroll4", "dot_simd"} {
		f := mod.ExportedFunction(fn)
		if f == nil {
			continue
		}
		if _, err := f.Call(ctx, uint64(arena), uint64(arena+4*dim), n, dim, uint64(out)); err != nil {
			t.Fatalf("%s: %v", fn, err)
		}
		b, _ := mod.Memory().Read(out, 4*n)
		for i := range n {
			all = append(all, math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
		}
	}
	return all
}

func TestInstrumentKeepsBehaviour(t *testing.T) {
	for _, src := range []string{"engine/plugin/testdata/loops", "engine/plugin/testdata/loopsgo"} {
		orig := wasmtest.Build(t, src, "")
		inst, st, err := Instrument(orig)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if st.Loops == 0 || st.Functions == 0 {
			t.Fatalf("%s: instrumented nothing: %+v", src, st)
		}
		want, got := dots(t, instantiate(t, orig)), dots(t, instantiate(t, inst))
		if len(want) == 0 || len(want) != len(got) {
			t.Fatalf("%s: %d vs %d outputs", src, len(want), len(got))
		}
		for i := range want {
			if want[i] != got[i] {
				t.Fatalf("%s: output %d differs: %v vs %v", src, i, want[i], got[i])
			}
		}
		mod := instantiate(t, inst)
		if mod.ExportedGlobal(StopGlobal) == nil {
			t.Fatalf("%s: no %s export", src, StopGlobal)
		}
		// With the flag set, the first loop traps.
		mod.ExportedGlobal(StopGlobal).(api.MutableGlobal).Set(1)
		res, _ := mod.ExportedFunction("arena").Call(context.Background())
		a := res[0]
		_, err = mod.ExportedFunction("dot_unroll4").Call(context.Background(), a, a+128, 1<<14+1, 32, a)
		if err == nil {
			t.Fatalf("%s: a stopped guest ran a loop to the end", src)
		}
	}
}

func TestInstrumentRefuses(t *testing.T) {
	hdr := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}
	mem := []byte{5, 3, 1, 0, 1} // one memory, min 1 page
	typ := []byte{1, 4, 1, 0x60, 0, 0}
	fn := []byte{3, 2, 1, 0}
	code := func(body ...byte) []byte {
		b := append([]byte{byte(len(body) + 1), 0}, body...) // no locals
		return append([]byte{10, byte(len(b) + 1), 1}, b...)
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for name, wasm := range map[string][]byte{
		"garbage":   []byte("not wasm"),
		"no memory": cat(hdr, typ, fn, code(0x0b)),
		"tail call": cat(hdr, typ, fn, mem, code(0x12, 0x00, 0x0b)),
		"opcode":    cat(hdr, typ, fn, mem, code(0xff, 0x0b)),
		"truncated": cat(hdr, typ, fn, mem, code(0x41)),
		"taken":     cat(hdr, typ, fn, mem, []byte{7, 13, 1, 11}, []byte(StopGlobal), []byte{2, 0}, code(0x0b)),
	} {
		if _, _, err := Instrument(wasm); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: err = %v, want ErrUnsupported", name, err)
		}
	}
	// The smallest valid case: one function with a loop.
	ok := cat(hdr, typ, fn, mem, code(0x03, 0x40, 0x0b, 0x0b))
	out, st, err := Instrument(ok)
	if err != nil || st.Loops != 1 {
		t.Fatalf("Instrument = %v, %+v", err, st)
	}
	if _, err := wazero.NewRuntime(context.Background()).CompileModule(context.Background(), out); err != nil {
		t.Fatalf("the instrumented module does not compile: %v", err)
	}
}

func FuzzInstrument(f *testing.F) {
	f.Add([]byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 1, 4, 1, 0x60, 0, 0, 3, 2, 1, 0, 5, 3, 1, 0, 1, 10, 6, 1, 4, 0, 3, 0x40, 0x0b})
	f.Fuzz(func(t *testing.T, wasm []byte) {
		out, _, err := Instrument(wasm)
		if err != nil {
			return
		}
		// Whatever wazero accepts before, it must accept after.
		ctx := context.Background()
		rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
		defer rt.Close(ctx)
		if _, err := rt.CompileModule(ctx, wasm); err != nil {
			return
		}
		if _, err := rt.CompileModule(ctx, out); err != nil {
			t.Fatalf("valid module became invalid: %v", err)
		}
	})
}
