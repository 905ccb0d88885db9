package plugin

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/podium-rank/podium/engine/plugin/internal/wasmtest"
)

// Benchmarks for the numbers in the plugin notes (RATIONALE.md, bench/README.md). Run:
//
//	go test -run '^$' -bench 'Boundary|Linear|Compile' -benchtime 2000x -count 3 ./engine/plugin/

// rankInput is a rank request of n candidates with nfeat random features.
func rankInput(n, nfeat int, seed uint64) *Input {
	r := rand.New(rand.NewPCG(seed, 1))
	in := &Input{K: 20, IDs: make([]uint32, n), Scores: make([]float32, n), Features: make([]float32, n*nfeat)}
	for i := range n {
		in.IDs[i] = uint32(i)
		in.Scores[i] = r.Float32()
	}
	for i := range in.Features {
		in.Features[i] = r.Float32()
	}
	return in
}

func featureNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("f%d", i)
	}
	return names
}

func featuresParam(n int) []byte {
	return []byte(`{"features":["` + strings.Join(featureNames(n), `","`) + `"]}`)
}

// BenchmarkBoundary measures the whole cost of crossing into a guest that does nothing:
// the copy of n candidates x 32 features in, the call, and the checked copy of n scores out.
// b.SetBytes counts the bytes copied in.
func BenchmarkBoundary(b *testing.B) {
	const nfeat = 32
	p := startTest(b, "engine/plugin/testdata/nop", PluginConfig{Params: featuresParam(nfeat), Instances: 1})
	for _, n := range []int{100, 1000, 5000} {
		in := rankInput(n, nfeat, 1)
		var out Output
		// The floor: copying the same bytes in and the scores out, natively.
		dst := make([]byte, 4*n*(nfeat+2))
		b.Run(fmt.Sprintf("memmove/n=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(dst)))
			for b.Loop() {
				copy(dst, f32Bytes(in.Features))
				copy(dst[4*n*nfeat:], u32Bytes(in.IDs))
				copy(dst[4*n*(nfeat+1):], f32Bytes(in.Scores))
				out.Scores = append(out.Scores[:0], in.Scores...)
			}
		})
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(4 * n * (nfeat + 2)))
			for b.Loop() {
				if err := p.Call(context.Background(), in, &out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBoundaryParallel is BenchmarkBoundary at n=1000 from GOMAXPROCS goroutines
// through a pool of GOMAXPROCS instances.
func BenchmarkBoundaryParallel(b *testing.B) {
	const nfeat = 32
	p := startTest(b, "engine/plugin/testdata/nop", PluginConfig{Params: featuresParam(nfeat)})
	if err := p.Warm(context.Background()); err != nil {
		b.Fatal(err)
	}
	in := rankInput(1000, nfeat, 1)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var out Output
		for pb.Next() {
			if err := p.Call(context.Background(), in, &out); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// nativeLinear is rank/linear written in plain Go over the same Input: the baseline the
// guests are compared with.
func nativeLinear(w []float32, in *Input, out []float32) {
	WSum(w, in.Features, out)
	for i := range out {
		out[i] += 0.5 * in.Scores[i]
	}
}

// BenchmarkLinear runs rank/linear on 1000 candidates x 32 features: native Go, and the
// Go and C guests with the host kernels and with the loops in the guest (C also without
// SIMD). Variants run interleaved call by call, each variant's time per call and its ratio
// to native Go are reported as metrics.
func BenchmarkLinear(b *testing.B) {
	for _, n := range []int{100, 1000, 5000} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) { benchLinear(b, n) })
	}
}

func benchLinear(b *testing.B, n int) {
	const nfeat = 32
	names := featureNames(nfeat)
	weights := make([]string, nfeat)
	w := make([]float32, nfeat)
	for j := range w {
		w[j] = float32(j%5) * 0.25
		weights[j] = fmt.Sprintf("%q:%g", names[j], w[j])
	}
	params := func(kernels bool) []byte {
		return fmt.Appendf(nil, `{"features":["%s"],"weights":{%s},"input_weight":0.5,"kernels":%v}`,
			strings.Join(names, `","`), strings.Join(weights, ","), kernels)
	}
	type variant struct {
		name string
		p    *Plugin
	}
	var variants []variant
	for _, g := range []struct{ name, src, cflags string }{
		{"go", "plugins/rank/linear/go", ""},
		{"c", "plugins/rank/linear/c", ""},
		{"c-nosimd", "plugins/rank/linear/c", "-mno-simd128"},
	} {
		m, err := runtimeForTest(b).Load(context.Background(), wasmtest.Build(b, g.src, g.cflags))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { m.Close(context.Background()) })
		for _, kernels := range []bool{true, false} {
			if g.name == "c-nosimd" && kernels {
				continue // the kernel path does not depend on the guest's SIMD
			}
			p, err := m.Start(context.Background(), PluginConfig{Params: params(kernels), Instances: 1, MemoryLimitPages: 1024, Timeout: 5 * time.Second})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { p.Close(context.Background()) })
			name := g.name + "-kernels"
			if !kernels {
				name = g.name + "-loops"
			}
			variants = append(variants, variant{name, p})
		}
	}
	in := rankInput(n, nfeat, 3)
	native := make([]float32, n)
	var out Output
	// Every variant computes the same scores.
	nativeLinear(w, in, native)
	for _, v := range variants {
		if err := v.p.Call(context.Background(), in, &out); err != nil {
			b.Fatal(err)
		}
		for i := range native {
			if d := out.Scores[i] - native[i]; d > 1e-4 || d < -1e-4 {
				b.Fatalf("%s: score %d = %v, native %v", v.name, i, out.Scores[i], native[i])
			}
		}
	}
	totals := make([]time.Duration, len(variants)+1)
	rounds := 0
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		nativeLinear(w, in, native)
		totals[0] += time.Since(start)
		for i, v := range variants {
			start := time.Now()
			if err := v.p.Call(context.Background(), in, &out); err != nil {
				b.Fatal(err)
			}
			totals[i+1] += time.Since(start)
		}
		rounds++
	}
	b.ReportMetric(float64(totals[0].Nanoseconds())/float64(rounds), "native-ns")
	for i, v := range variants {
		b.ReportMetric(float64(totals[i+1].Nanoseconds())/float64(rounds), v.name+"-ns")
		b.ReportMetric(float64(totals[i+1])/float64(totals[0]), v.name+"-x")
	}
}

// BenchmarkCompile measures compiling a module cold (no cache), from the on-disk cache,
// and starting one instance, with the memory each instance takes: its linear memory and
// the Go heap it adds (the mean over 8 instances).
func BenchmarkCompile(b *testing.B) {
	ctx := context.Background()
	for _, g := range []struct{ name, src string }{
		{"go", "plugins/rank/linear/go"},
		{"c", "plugins/rank/linear/c"},
	} {
		wasm := wasmtest.Build(b, g.src, "")
		b.Run(g.name+"/cold", func(b *testing.B) {
			for b.Loop() {
				rt, err := NewRuntime(ctx, Config{})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := rt.Load(ctx, wasm); err != nil {
					b.Fatal(err)
				}
				rt.Close(ctx)
			}
		})
		dir := b.TempDir()
		warm, _ := NewRuntime(ctx, Config{CacheDir: dir})
		if _, err := warm.Load(ctx, wasm); err != nil {
			b.Fatal(err)
		}
		warm.Close(ctx)
		b.Run(g.name+"/cached", func(b *testing.B) {
			for b.Loop() {
				rt, err := NewRuntime(ctx, Config{CacheDir: dir})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := rt.Load(ctx, wasm); err != nil {
					b.Fatal(err)
				}
				rt.Close(ctx)
			}
		})
		b.Run(g.name+"/instance", func(b *testing.B) {
			rt, _ := NewRuntime(ctx, Config{CacheDir: dir})
			defer rt.Close(ctx)
			m, err := rt.Load(ctx, wasm)
			if err != nil {
				b.Fatal(err)
			}
			const per = 8
			var heap, linear uint64
			rounds := 0
			for b.Loop() {
				var before, after runtime.MemStats
				b.StopTimer()
				runtime.GC()
				runtime.ReadMemStats(&before)
				b.StartTimer()
				p, err := m.Start(ctx, PluginConfig{Instances: per})
				if err != nil {
					b.Fatal(err)
				}
				if err := p.Warm(ctx); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				runtime.GC()
				runtime.ReadMemStats(&after)
				heap += after.HeapAlloc - min(after.HeapAlloc, before.HeapAlloc)
				linear += p.Stats().MemoryBytes
				p.Close(ctx)
				rounds++
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rounds*per), "ns/instance")
			b.ReportMetric(float64(linear)/float64(rounds*per)/(1<<20), "MiB-linear/instance")
			b.ReportMetric(float64(heap)/float64(rounds*per)/(1<<20), "MiB-goheap/instance")
		})
	}
}
