package plugin

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podium-rank/podium/engine/plugin/internal/wasmtest"
	"github.com/podium-rank/podium/sdk/abi"
)

// testRT is one Runtime per test binary, with the compilation cache shared across runs.
var (
	testRTOnce sync.Once
	testRT     *Runtime
	testRTErr  error
)

// brands is the Resolver of the tests: brand "acme" is code 3.
type brands struct{}

func (brands) Lookup(space, value string) (int32, bool) {
	if space == "brand" && value == "acme" {
		return 3, true
	}
	return -1, false
}

const testMemoryPages = 64 // 4 MiB, so the grow bombs hit the limit fast

func runtimeForTest(t testing.TB) *Runtime {
	t.Helper()
	testRTOnce.Do(func() {
		testRT, testRTErr = NewRuntime(context.Background(), Config{
			CacheDir:         wasmtest.CacheDir(t),
			MemoryLimitPages: testMemoryPages,
			Resolver:         brands{},
		})
	})
	if testRTErr != nil {
		t.Fatal(testRTErr)
	}
	return testRT
}

func TestMain(m *testing.M) {
	code := m.Run()
	if testRT != nil {
		testRT.Close(context.Background())
	}
	os.Exit(code)
}

// modules are loaded once per test binary.
var (
	modMu   sync.Mutex
	modules = map[string]*Module{}
)

func loadTestModule(t testing.TB, src string) *Module {
	t.Helper()
	modMu.Lock()
	defer modMu.Unlock()
	if m, ok := modules[src]; ok {
		return m
	}
	m, err := runtimeForTest(t).Load(context.Background(), wasmtest.Build(t, src, ""))
	if err != nil {
		t.Fatal(err)
	}
	modules[src] = m
	return m
}

func startTest(t testing.TB, src string, cfg PluginConfig) *Plugin {
	t.Helper()
	p, err := loadTestModule(t, src).Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	return p
}

// echoInput builds an input for testdata/hostile with n candidates and the given context.
func echoInput(n int, ctx ...KV) *Input {
	in := &Input{K: 10, Context: ctx}
	for i := range n {
		in.IDs = append(in.IDs, uint32(100+i))
		in.StringIDs = append(in.StringIDs, strings.Repeat("s", i%3+1))
		in.Scores = append(in.Scores, float32(i)*0.5)
		in.Attrs = append(in.Attrs, int32(i%5))
	}
	for j := range 2 {
		for i := range n {
			in.Features = append(in.Features, float32(j*1000+i)*0.01)
		}
	}
	for i := range n * 4 {
		in.ItemEmb = append(in.ItemEmb, float32(i%7)*0.25)
	}
	in.QueryEmb = []float32{1, -1, 0.5, 2}
	return in
}

// echoWant is what testdata/hostile computes for in.
func echoWant(in *Input, bias float64) []float32 {
	n := len(in.IDs)
	want := make([]float32, n)
	for i := range n {
		var d float32
		Dot(in.QueryEmb, in.ItemEmb[4*i:4*i+4], want[i:i+1])
		d = want[i]
		s := in.Scores[i] + in.Features[i] + 2*in.Features[n+i] + 10*float32(in.Attrs[i]) +
			100*float32(len(in.StringIDs[i])) + d + float32(bias)
		if in.Attrs[i] == 3 {
			s += 1000
		}
		want[i] = s
	}
	return want
}

func TestEchoEveryInput(t *testing.T) {
	p := startTest(t, "engine/plugin/testdata/hostile", PluginConfig{})
	if got := fmt.Sprintf("%v %v %v", p.Features(), p.Attributes(), p.Kind()); got != "[f0 f1] [brand] rank" {
		t.Fatalf("needs = %s", got)
	}
	in := echoInput(37, Str("user", "u1"), Num("bias", 0.25), Str("device", "ios"))
	var out Output
	if err := p.Call(context.Background(), in, &out); err != nil {
		t.Fatal(err)
	}
	want := echoWant(in, 0.25)
	if len(out.Scores) != len(want) || len(out.Keep)+len(out.Pin)+len(out.Order) != 0 {
		t.Fatalf("output lengths %d/%d/%d/%d", len(out.Scores), len(out.Keep), len(out.Pin), len(out.Order))
	}
	for i := range want {
		if math.Abs(float64(out.Scores[i]-want[i])) > 1e-3 {
			t.Fatalf("score %d = %v, want %v", i, out.Scores[i], want[i])
		}
	}
	// No candidates is a valid call too.
	if err := p.Call(context.Background(), echoInput(0), &out); err != nil || len(out.Scores) != 0 {
		t.Fatalf("empty call: %v, %d scores", err, len(out.Scores))
	}
}

func TestBadInput(t *testing.T) {
	p := startTest(t, "engine/plugin/testdata/hostile", PluginConfig{})
	for name, mutate := range map[string]func(in *Input){
		"features":   func(in *Input) { in.Features = in.Features[1:] },
		"attrs":      func(in *Input) { in.Attrs = nil },
		"scores":     func(in *Input) { in.Scores = in.Scores[:3] },
		"string ids": func(in *Input) { in.StringIDs = nil },
		"embedding":  func(in *Input) { in.ItemEmb = in.ItemEmb[:5] },
		"k":          func(in *Input) { in.K = -1 },
	} {
		in := echoInput(8)
		mutate(in)
		if err := p.Call(context.Background(), in, &Output{}); !errors.Is(err, ErrInput) {
			t.Errorf("%s: err = %v, want ErrInput", name, err)
		}
	}
	if s := p.Stats(); s.Calls != 0 {
		t.Fatalf("bad inputs reached the guest: %+v", s)
	}
}

// TestHostileContained runs each misbehaviour, checks its fault kind and counter, and that
// the next call on the same plugin works.
func TestHostileContained(t *testing.T) {
	cases := []struct {
		src, behave string
		kind        FaultKind
		kept        bool // instance kept (only for FaultStatus)
	}{
		{"hostile", "trap", FaultTrap, false},
		{"hostile", "spin", FaultTimeout, false},
		{"hostile", "grow", FaultMemory, false},
		{"hostile", "growquiet", FaultMemory, false},
		{"hostile", "oob", FaultTrap, false},
		{"hostile", "kernel", FaultTrap, false},
		{"hostile", "nan", FaultBadOutput, false},
		{"hostile", "inf", FaultBadOutput, false},
		{"hostile", "error", FaultStatus, true},
		{"hostile-div", "range", FaultBadOutput, false},
		{"hostile-div", "neg", FaultBadOutput, false},
		{"hostile-div", "dup", FaultBadOutput, false},
		{"hostile-div", "long", FaultBadOutput, false},
		{"hostile-div", "spin", FaultTimeout, false},
		{"hostile-rules", "keep", FaultBadOutput, false},
		{"hostile-rules", "pin", FaultBadOutput, false},
		{"hostile-rules", "trap", FaultTrap, false},
	}
	for _, c := range cases {
		t.Run(c.src+"/"+c.behave, func(t *testing.T) {
			timeout := 100 * time.Millisecond
			if c.kind != FaultTimeout {
				timeout = 5 * time.Second // slow machines (-race, shared cores) must not turn faults into timeouts
			}
			p := startTest(t, "engine/plugin/testdata/"+c.src, PluginConfig{Timeout: timeout, Instances: 2})
			in := func(behave string) *Input {
				if c.src == "hostile" {
					return echoInput(20, Str("behave", behave))
				}
				ids := make([]uint32, 20)
				for i := range ids {
					ids[i] = uint32(i)
				}
				return &Input{K: 10, IDs: ids, Context: []KV{Str("behave", behave)}}
			}
			var out Output
			start := time.Now()
			err := p.Call(context.Background(), in(c.behave), &out)
			var fe *FaultError
			if !errors.As(err, &fe) || fe.Kind != c.kind {
				t.Fatalf("err = %v, want a %s fault", err, c.kind)
			}
			if fe.Plugin != p.Name() || fe.Version != p.Version() {
				t.Fatalf("fault names %s@%s", fe.Plugin, fe.Version)
			}
			if c.kind == FaultTimeout && time.Since(start) > 5*time.Second {
				t.Fatalf("timeout took %v", time.Since(start))
			}
			s := p.Stats()
			if s.Fault(c.kind) != 1 || s.Calls != 1 {
				t.Fatalf("stats after the fault: %+v", s)
			}
			if discarded := s.InstancesDiscarded == 1; discarded == c.kept {
				t.Fatalf("instance discarded = %v, want %v", discarded, !c.kept)
			}
			// Serving continues.
			for range 3 {
				if err := p.Call(context.Background(), in("ok"), &out); err != nil {
					t.Fatalf("the call after the fault: %v", err)
				}
			}
			if s := p.Stats(); s.Fault(c.kind) != 1 || s.Calls != 4 {
				t.Fatalf("stats after recovery: %+v", s)
			}
		})
	}
}

func TestHugeLogIsBounded(t *testing.T) {
	p := startTest(t, "engine/plugin/testdata/hostile", PluginConfig{})
	if err := p.Call(context.Background(), echoInput(5, Str("behave", "hugelog")), &Output{}); err != nil {
		t.Fatal(err)
	}
	s := p.Stats()
	// 1000 messages of 10 KB and one "scored": LogMaxLines pass (each cut to 512 bytes, so
	// the byte budget stops them first), the rest are dropped.
	if s.LogLines == 0 || s.LogLines > abi.LogMaxLines || s.LogDropped < 1000-abi.LogMaxLines {
		t.Fatalf("log counters: %d lines, %d dropped", s.LogLines, s.LogDropped)
	}
}

func TestRulesAndDiversityOutputs(t *testing.T) {
	ids := []uint32{10, 11, 12, 13, 14}
	scores := []float32{5, 4, 3, 2, 1}
	rules := startTest(t, "engine/plugin/testdata/hostile-rules", PluginConfig{})
	var out Output
	if err := rules.Call(context.Background(), &Input{K: 3, IDs: ids, Scores: scores}, &out); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(out.Scores, out.Keep, out.Pin, len(out.Order)); got != "[10 8 6 4 2] [true false true false true] [2 -1 -1 -1 -1] 0" {
		t.Fatalf("rules output %s", got)
	}
	div := startTest(t, "engine/plugin/testdata/hostile-div", PluginConfig{})
	if err := div.Call(context.Background(), &Input{K: 3, IDs: ids, Scores: scores}, &out); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(out.Order, len(out.Scores)); got != "[2 1 0] 0" {
		t.Fatalf("diversity output %s", got)
	}
}

func TestStartFailures(t *testing.T) {
	m := loadTestModule(t, "engine/plugin/testdata/hostile")
	ctx := context.Background()
	for name, c := range map[string]struct {
		cfg  PluginConfig
		want error
	}{
		"init fails":     {PluginConfig{Params: []byte(`{"init":"fail"}`)}, nil},
		"init spins":     {PluginConfig{Params: []byte(`{"init":"spin"}`), InitTimeout: 100 * time.Millisecond}, nil},
		"params":         {PluginConfig{Params: []byte(`[1]`)}, ErrParams},
		"features":       {PluginConfig{Params: []byte(`{"features":"f0"}`)}, ErrParams},
		"feature twice":  {PluginConfig{Params: []byte(`{"features":["a","a"]}`)}, ErrParams},
		"bad attributes": {PluginConfig{Params: []byte(`{"attributes":[""]}`)}, ErrParams},
	} {
		p, err := m.Start(ctx, c.cfg)
		if p != nil || err == nil {
			t.Fatalf("%s: Start succeeded", name)
		}
		if c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", name, err, c.want)
		}
		var fe *FaultError
		if c.want == nil && (!errors.As(err, &fe) || fe.Kind != FaultInit) {
			t.Errorf("%s: err = %v, want a FaultInit", name, err)
		}
		if err := p.Close(ctx); err != nil { // Close is safe after a failed Start
			t.Errorf("%s: Close: %v", name, err)
		}
	}
	if strings.Contains(fmt.Sprint(m.Start(ctx, PluginConfig{Params: []byte(`{"init":"fail"}`)})), "asked to fail") {
		t.Log("the guest's log is not part of the error; that is fine")
	}
}

func TestParamsOverride(t *testing.T) {
	p := startTest(t, "engine/plugin/testdata/hostile", PluginConfig{Params: []byte(`{"features":["x","y"],"extra":1}`)})
	if got := fmt.Sprint(p.Features()); got != "[x y]" {
		t.Fatalf("features = %s", got)
	}
	if got := string(p.Params()); got != `{"attributes":["brand"],"brand":"acme","extra":1,"features":["x","y"]}` {
		t.Fatalf("params = %s", got)
	}
}

func TestDrainAndClose(t *testing.T) {
	m := loadTestModule(t, "engine/plugin/testdata/hostile")
	ctx := context.Background()
	p, err := m.Start(ctx, PluginConfig{Instances: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Warm(ctx); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Instances != 2 || s.InstancesStarted != 2 {
		t.Fatalf("after Warm: %+v", s)
	}
	if err := m.Close(ctx); err == nil {
		t.Fatal("closed a module with an open plugin")
	}
	// A slow call in flight while Drain runs.
	slow := make(chan error)
	go func() {
		slow <- p.Call(ctx, echoInput(1000, Str("behave", "spin")), &Output{})
	}()
	time.Sleep(10 * time.Millisecond)
	if err := p.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	var fe *FaultError
	if err := <-slow; !errors.As(err, &fe) || fe.Kind != FaultTimeout {
		t.Fatalf("the call in flight: %v", err)
	}
	if err := p.Call(ctx, echoInput(3), &Output{}); !errors.Is(err, ErrDraining) {
		t.Fatalf("Call after Drain = %v", err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal("second Close:", err)
	}
	if s := p.Stats(); s.Instances != 0 {
		t.Fatalf("instances left after Close: %+v", s)
	}
	if s := m.Stats(); s.Fault(FaultTimeout) < 1 {
		t.Fatalf("module stats lost the closed plugin's counters: %+v", s)
	}
}

// TestHammer runs many goroutines through a small pool, mixing good calls with traps and
// bad outputs: under -race this checks that no instance is shared and faults do not leak.
func TestHammer(t *testing.T) {
	p := startTest(t, "engine/plugin/testdata/hostile", PluginConfig{Instances: 3})
	const goroutines, calls = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out Output
			for i := range calls {
				behave := "ok"
				switch (g*calls + i) % 10 {
				case 3:
					behave = "trap"
				case 7:
					behave = "nan"
				}
				in := echoInput(16+g, Str("behave", behave), Num("bias", float64(g)))
				err := p.Call(context.Background(), in, &out)
				if behave != "ok" {
					if err == nil {
						errs <- fmt.Errorf("%s call succeeded", behave)
						return
					}
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				want := echoWant(in, float64(g))
				for j := range want {
					if math.Abs(float64(out.Scores[j]-want[j])) > 1e-3 {
						errs <- fmt.Errorf("goroutine %d call %d: score %d = %v, want %v", g, i, j, out.Scores[j], want[j])
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s := p.Stats()
	total := uint64(goroutines * calls)
	if s.Calls != total || s.Fault(FaultTrap)+s.Fault(FaultBadOutput) != total/5 || s.Instances > 3 {
		t.Fatalf("stats: %+v", s)
	}
}

func TestFaultedInstanceReplacedInBackground(t *testing.T) {
	p := startTest(t, "engine/plugin/testdata/hostile", PluginConfig{Instances: 1})
	if err := p.Call(context.Background(), echoInput(4, Str("behave", "trap")), &Output{}); err == nil {
		t.Fatal("trap call succeeded")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := p.Stats()
		if s.InstancesStarted == 2 && s.Instances == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no replacement started: %+v", s)
		}
		time.Sleep(time.Millisecond)
	}
	if err := p.Call(context.Background(), echoInput(4), &Output{}); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.InstancesStarted != 2 {
		t.Fatalf("the call started another instance: %+v", s)
	}
}
