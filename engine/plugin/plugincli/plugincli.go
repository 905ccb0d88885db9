// Package plugincli implements `engine plugin validate|test|bench FILE.wasm`: the commands
// a plugin author runs to check a .wasm against the ABI, run it on fixtures, and time it.
//
// Main is the whole command; cmd/engine wires it. It is goroutine-safe (each call builds
// its own Runtime).
package plugincli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/podium-rank/podium/engine/plugin"
	"github.com/podium-rank/podium/sdk/sdktest/fixture"
)

const usage = `usage: engine plugin <command> [flags] FILE.wasm [FIXTURES...]

commands:
  validate  check the manifest, exports, imports and ABI version, start the plugin with its
            params and run one call on a generated batch
  test      run fixtures (JSON files, or directories of them) and compare each with its
            .golden.json twin; -update writes the twins
  bench     time calls on generated batches of 100, 1000 and 5000 candidates

flags (every command):
  -params JSON   stage params over the manifest defaults
  -cache DIR     compilation cache directory (default: the user cache dir, "off" for none)
  -mem PAGES     memory limit per instance, in 64 KiB pages (default 1024)
`

// Main runs the command in args (args[0] is "validate", "test" or "bench") and returns the
// process exit code: 0 success, 1 failure, 2 usage error.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	fs := flag.NewFlagSet("engine plugin "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	params := fs.String("params", "", "stage params (JSON object)")
	cache := fs.String("cache", "", "compilation cache directory")
	mem := fs.Uint("mem", plugin.DefaultMemoryLimitPages, "memory limit per instance in pages")
	update := fs.Bool("update", false, "test: write the golden files")
	sizes := fs.String("n", "100,1000,5000", "bench: candidates per call")
	dur := fs.Duration("dur", time.Second, "bench: time per size")
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	cmd := args[0]
	if cmd != "validate" && cmd != "test" && cmd != "bench" {
		fmt.Fprintf(stderr, "engine plugin: unknown command %q\n%s", cmd, usage)
		return 2
	}
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() < 1 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	c := &cli{out: stdout, params: json.RawMessage(*params), mem: uint32(*mem)}
	err := c.open(fs.Arg(0), *cache)
	if err == nil {
		defer c.close()
		switch cmd {
		case "validate":
			err = c.validate()
		case "test":
			err = c.test(fs.Args()[1:], *update)
		case "bench":
			err = c.bench(*sizes, *dur)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "engine plugin %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

type cli struct {
	out    io.Writer
	params json.RawMessage
	mem    uint32
	path   string
	wasm   []byte
	dict   *fixture.Dict
	rt     *plugin.Runtime
	mod    *plugin.Module
}

func (c *cli) open(path, cache string) error {
	wasm, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	c.path, c.wasm = path, wasm
	switch cache {
	case "off":
		cache = ""
	case "":
		if dir, err := os.UserCacheDir(); err == nil {
			cache = filepath.Join(dir, "podium", "wazero")
			if os.MkdirAll(cache, 0o755) != nil {
				cache = ""
			}
		}
	}
	c.dict = &fixture.Dict{}
	c.rt, err = plugin.NewRuntime(context.Background(), plugin.Config{CacheDir: cache, MemoryLimitPages: c.mem, Resolver: c.dict})
	if err != nil {
		return err
	}
	c.mod, err = c.rt.Load(context.Background(), wasm)
	return err
}

func (c *cli) close() {
	ctx := context.Background()
	if c.mod != nil {
		c.mod.Close(ctx)
	}
	c.rt.Close(ctx)
}

func (c *cli) start() (*plugin.Plugin, time.Duration, error) {
	start := time.Now()
	p, err := c.mod.Start(context.Background(), plugin.PluginConfig{Params: c.params, Timeout: 10 * time.Second, Instances: 1})
	return p, time.Since(start), err
}

func (c *cli) validate() error {
	m := c.mod.Manifest()
	fmt.Fprintf(c.out, "plugin   %s %s (%s, ABI %d)\n", m.Name, m.Version, m.Kind, m.ABI)
	if m.Description != "" {
		fmt.Fprintf(c.out, "about    %s\n", m.Description)
	}
	fmt.Fprintf(c.out, "version  %s\n", c.mod.Version())
	fmt.Fprintf(c.out, "size     %d bytes, compiled in %v\n", c.mod.Size(), c.mod.CompileTime().Round(time.Microsecond))
	fmt.Fprintf(c.out, "exports  ok; imports ok; ABI version ok\n")
	p, took, err := c.start()
	if err != nil {
		return err
	}
	defer p.Close(context.Background())
	fmt.Fprintf(c.out, "features %s\n", list(p.Features()))
	fmt.Fprintf(c.out, "needs    %s\n", needs(p))
	fmt.Fprintf(c.out, "params   %s\n", p.Params())
	s := p.Stats()
	fmt.Fprintf(c.out, "init     ok: one instance in %v, %s of linear memory\n", took.Round(time.Microsecond), mib(s.MemoryBytes))
	in := generate(p, 16, 1)
	var out plugin.Output
	start := time.Now()
	if err := p.Call(context.Background(), in, &out); err != nil {
		return fmt.Errorf("smoke call on 16 generated candidates: %w", err)
	}
	fmt.Fprintf(c.out, "smoke    ok: 16 candidates in %v\n", time.Since(start).Round(time.Microsecond))
	return nil
}

func list(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ", ")
}

func needs(p *plugin.Plugin) string {
	n := p.Needs()
	var parts []string
	if n.ItemEmbedding {
		parts = append(parts, "item embedding")
	}
	if n.QueryEmbedding {
		parts = append(parts, "query embedding")
	}
	if len(n.Attributes) > 0 {
		parts = append(parts, "attributes "+strings.Join(n.Attributes, ", "))
	}
	if n.IDs {
		parts = append(parts, "string ids")
	}
	if n.Clock {
		parts = append(parts, "clock")
	}
	return list(parts)
}

func mib(b uint64) string { return fmt.Sprintf("%.2f MiB", float64(b)/(1<<20)) }

// test runs every fixture and compares it with its golden twin.
func (c *cli) test(paths []string, update bool) error {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		all, _ := filepath.Glob(filepath.Join(p, "*.json"))
		for _, f := range all {
			if !strings.HasSuffix(f, ".golden.json") {
				files = append(files, f)
			}
		}
	}
	if len(files) == 0 {
		return errors.New("no fixtures given")
	}
	failed := 0
	for _, path := range files {
		f, err := fixture.Read(path)
		if err != nil {
			return err
		}
		params := c.params
		if len(f.Params) > 0 {
			params = f.Params
		}
		p, err := c.mod.Start(context.Background(), plugin.PluginConfig{Params: params, Timeout: 10 * time.Second, Instances: 1})
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		got, err := fixture.Run(c.dict, p, f)
		p.Close(context.Background())
		if err != nil {
			fmt.Fprintf(c.out, "FAIL %s: %v\n", path, err)
			failed++
			continue
		}
		golden := strings.TrimSuffix(path, ".json") + ".golden.json"
		data, _ := json.MarshalIndent(got, "", "  ")
		if update {
			if err := os.WriteFile(golden, append(data, '\n'), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(c.out, "wrote %s\n", golden)
			continue
		}
		wantData, err := os.ReadFile(golden)
		if errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(c.out, "RAN  %s (no golden; -update writes it)\n%s\n", path, data)
			continue
		}
		if err != nil {
			return err
		}
		var want fixture.Result
		if err := json.Unmarshal(wantData, &want); err != nil {
			return fmt.Errorf("%s: %w", golden, err)
		}
		if diff := fixture.Compare(&want, got, 1e-5); diff != "" {
			fmt.Fprintf(c.out, "FAIL %s: %s\n", path, diff)
			failed++
			continue
		}
		fmt.Fprintf(c.out, "ok   %s (top %s)\n", path, list(got.Ranked))
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d fixtures failed", failed, len(files))
	}
	return nil
}

// bench times calls on generated batches.
func (c *cli) bench(sizes string, dur time.Duration) error {
	var ns []int
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 0 {
			return fmt.Errorf("bad size %q in -n", s)
		}
		ns = append(ns, n)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	p, took, err := c.start()
	if err != nil {
		return err
	}
	defer p.Close(context.Background())
	runtime.GC()
	runtime.ReadMemStats(&after)
	m := c.mod.Manifest()
	fmt.Fprintf(c.out, "plugin %s (%s) %.12s, %d bytes\n", m.Name, m.Kind, c.mod.Version(), c.mod.Size())
	fmt.Fprintf(c.out, "compile %v; first instance %v, %s linear memory, %s Go heap\n",
		c.mod.CompileTime().Round(time.Microsecond), took.Round(time.Microsecond),
		mib(p.Stats().MemoryBytes), mib(after.HeapAlloc-min(before.HeapAlloc, after.HeapAlloc)))
	fmt.Fprintf(c.out, "%8s %10s %10s %10s %12s %8s\n", "n", "calls", "mean", "p50", "p99", "ns/cand")
	for _, n := range ns {
		in := generate(p, n, 7)
		var out plugin.Output
		for range 10 {
			if err := p.Call(context.Background(), in, &out); err != nil {
				return err
			}
		}
		var lat []time.Duration
		deadline := time.Now().Add(dur)
		for len(lat) < 100 || time.Now().Before(deadline) {
			start := time.Now()
			if err := p.Call(context.Background(), in, &out); err != nil {
				return err
			}
			lat = append(lat, time.Since(start))
		}
		var sum time.Duration
		for _, l := range lat {
			sum += l
		}
		slices.Sort(lat)
		mean := sum / time.Duration(len(lat))
		perCand := 0.0
		if n > 0 {
			perCand = float64(mean.Nanoseconds()) / float64(n)
		}
		fmt.Fprintf(c.out, "%8d %10d %10v %10v %12v %8.1f\n", n, len(lat), mean.Round(10*time.Nanosecond),
			lat[len(lat)/2].Round(10*time.Nanosecond), lat[len(lat)*99/100].Round(10*time.Nanosecond), perCand)
	}
	s := p.Stats()
	fmt.Fprintf(c.out, "linear memory after the runs: %s\n", mib(s.MemoryBytes))
	return nil
}

// generate builds a synthetic request of n candidates for p: features uniform in [0, 1),
// 32-dimensional embeddings, attribute codes 0..7, string ids "item-i", descending scores.
func generate(p *plugin.Plugin, n int, seed uint64) *plugin.Input {
	r := rand.New(rand.NewPCG(seed, 99))
	const dim = 32
	in := &plugin.Input{K: min(n, 20), Context: []plugin.KV{plugin.Str("user", "u1"), plugin.Num("hour", 13)}}
	for i := range n {
		in.IDs = append(in.IDs, uint32(i))
		in.Scores = append(in.Scores, 1-float32(i)/float32(n))
		if p.Needs().IDs {
			in.StringIDs = append(in.StringIDs, "item-"+strconv.Itoa(i))
		}
	}
	in.Features = make([]float32, len(p.Features())*n)
	for i := range in.Features {
		in.Features[i] = r.Float32()
	}
	in.Attrs = make([]int32, len(p.Attributes())*n)
	for i := range in.Attrs {
		in.Attrs[i] = int32(r.IntN(8))
	}
	if p.Needs().ItemEmbedding {
		in.ItemEmb = make([]float32, n*dim)
		for i := range in.ItemEmb {
			in.ItemEmb[i] = r.Float32()*2 - 1
		}
	}
	if p.Needs().QueryEmbedding {
		in.QueryEmb = make([]float32, dim)
		for i := range in.QueryEmb {
			in.QueryEmb[i] = r.Float32()*2 - 1
		}
	}
	return in
}
