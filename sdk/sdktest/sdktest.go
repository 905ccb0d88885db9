// Package sdktest runs Podium plugins in-process for tests: it builds a .wasm from source,
// loads it through engine/plugin, and runs it on Go values or on JSON fixtures compared
// with golden files (go test -update rewrites them).
//
// One Runtime is shared by the test binary, with wazero's compilation cache under the
// repository's .cache, so a guest compiles once per machine. Its Resolver interns strings
// per space on first sight, so params and fixtures agree on attribute codes and dense ids.
// Everything here is goroutine-safe.
package sdktest

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/podium-rank/podium/engine/plugin"
	"github.com/podium-rank/podium/sdk/abi"
)

var update = flag.Bool("update", false, "rewrite the golden files of sdktest.Golden")

// Fixture is one stage call described in JSON.
type Fixture struct {
	// Params override the manifest defaults, as a stage config would.
	Params json.RawMessage `json:"params,omitempty"`
	// K is the number of results wanted.
	K int `json:"k"`
	// Context is the request context: string or number values.
	Context map[string]any `json:"context,omitempty"`
	// Query is the query embedding.
	Query []float32 `json:"query_embedding,omitempty"`
	// Candidates in input order.
	Candidates []Candidate `json:"candidates"`
}

// Candidate is one fixture candidate. Its dense id is the code the Resolver interns for ID
// in space "id".
type Candidate struct {
	ID        string              `json:"id"`
	Score     float32             `json:"score"`
	Features  map[string]*float64 `json:"features,omitempty"` // absent or null: missing (NaN)
	Embedding []float32           `json:"embedding,omitempty"`
	Attrs     map[string]string   `json:"attrs,omitempty"`
}

// Result is a call's output in golden form: the raw outputs of the plugin's kind, and the
// resulting ranking of ids (see Apply).
type Result struct {
	Scores []float32 `json:"scores,omitempty"`
	Keep   []bool    `json:"keep,omitempty"`
	Pin    []int32   `json:"pin,omitempty"`
	Order  []int32   `json:"order,omitempty"`
	Ranked []string  `json:"ranked"`
}

// Dict is a Resolver that interns strings per space: the first string seen in a space
// gets code 0, the next 1, and so on.
type Dict struct {
	mu     sync.Mutex
	spaces map[string]map[string]int32
}

// Lookup implements plugin.Resolver; it interns value.
func (d *Dict) Lookup(space, value string) (int32, bool) { return d.Code(space, value), true }

// Code returns the code of value in space, interning it.
func (d *Dict) Code(space, value string) int32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.spaces == nil {
		d.spaces = map[string]map[string]int32{}
	}
	s := d.spaces[space]
	if s == nil {
		s = map[string]int32{}
		d.spaces[space] = s
	}
	c, ok := s[value]
	if !ok {
		c = int32(len(s))
		s[value] = c
	}
	return c
}

var (
	rtOnce sync.Once
	rt     *plugin.Runtime
	rtErr  error
	dict   = &Dict{}
)

// Runtime returns the shared Runtime of the test binary, and its Dict.
func Runtime(tb testing.TB) (*plugin.Runtime, *Dict) {
	tb.Helper()
	rtOnce.Do(func() {
		var root string
		if root, rtErr = repoRoot(); rtErr != nil {
			return
		}
		dir := filepath.Join(root, ".cache", "wazero")
		if rtErr = os.MkdirAll(dir, 0o755); rtErr != nil {
			return
		}
		rt, rtErr = plugin.NewRuntime(context.Background(), plugin.Config{CacheDir: dir, Resolver: dict})
	})
	if rtErr != nil {
		tb.Fatal(rtErr)
	}
	return rt, dict
}

var (
	modMu   sync.Mutex
	modules = map[string]*plugin.Module{}
)

// Load returns the module for wasm, loading it at most once per test binary.
func Load(tb testing.TB, wasm []byte) *plugin.Module {
	tb.Helper()
	r, _ := Runtime(tb)
	v := plugin.Version(wasm)
	modMu.Lock()
	defer modMu.Unlock()
	if m, ok := modules[v]; ok {
		return m
	}
	m, err := r.Load(context.Background(), wasm)
	if err != nil {
		tb.Fatal(err)
	}
	modules[v] = m
	return m
}

// Start starts the plugin in wasm with params and closes it when the test ends.
func Start(tb testing.TB, wasm []byte, params json.RawMessage) *plugin.Plugin {
	tb.Helper()
	p, err := Load(tb, wasm).Start(context.Background(), plugin.PluginConfig{Params: params})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Close(context.Background()) })
	return p
}

// ReadFixture reads a JSON fixture.
func ReadFixture(path string) (*Fixture, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f Fixture
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &f, nil
}

// Input builds the plugin.Input of a fixture for plugin p, interning ids and attribute
// values in the shared Dict.
func Input(p *plugin.Plugin, f *Fixture) (*plugin.Input, error) {
	n := len(f.Candidates)
	in := &plugin.Input{K: f.K, QueryEmb: f.Query}
	keys := make([]string, 0, len(f.Context))
	for k := range f.Context {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch v := f.Context[k].(type) {
		case string:
			in.Context = append(in.Context, plugin.Str(k, v))
		case float64:
			in.Context = append(in.Context, plugin.Num(k, v))
		default:
			return nil, fmt.Errorf("context %q: want a string or a number, got %T", k, v)
		}
	}
	in.Features = make([]float32, len(p.Features())*n)
	in.Attrs = make([]int32, len(p.Attributes())*n)
	for i, c := range f.Candidates {
		in.IDs = append(in.IDs, uint32(dict.Code("id", c.ID)))
		in.StringIDs = append(in.StringIDs, c.ID)
		in.Scores = append(in.Scores, c.Score)
		for j, name := range p.Features() {
			v := float32(math.NaN())
			if x := c.Features[name]; x != nil {
				v = float32(*x)
			}
			in.Features[j*n+i] = v
		}
		for a, name := range p.Attributes() {
			code := int32(-1)
			if s, ok := c.Attrs[name]; ok {
				code = dict.Code(name, s)
			}
			in.Attrs[a*n+i] = code
		}
		if p.Needs().ItemEmbedding {
			if i > 0 && len(c.Embedding) != len(f.Candidates[0].Embedding) {
				return nil, fmt.Errorf("candidate %s: embedding of %d values, the first has %d", c.ID, len(c.Embedding), len(f.Candidates[0].Embedding))
			}
			in.ItemEmb = append(in.ItemEmb, c.Embedding...)
		}
	}
	if !p.Needs().IDs {
		in.StringIDs = nil
	}
	return in, nil
}

// Run runs one fixture through p and returns its result.
func Run(p *plugin.Plugin, f *Fixture) (*Result, error) {
	in, err := Input(p, f)
	if err != nil {
		return nil, err
	}
	var out plugin.Output
	if err := p.Call(context.Background(), in, &out); err != nil {
		return nil, err
	}
	ids := make([]string, len(f.Candidates))
	for i, c := range f.Candidates {
		ids[i] = c.ID
	}
	res := &Result{Scores: out.Scores, Keep: out.Keep, Pin: out.Pin, Order: out.Order}
	res.Ranked = Apply(p.Kind(), ids, in.Scores, &out, f.K)
	return res, nil
}

// Apply returns the top k ids after a stage's output, with the semantics of sdk/ABI.md §4:
// rank sorts by score; rules drops, sorts by score and moves pinned candidates to their
// positions; diversity takes the order, then the unlisted candidates in input order. Ties
// keep input order. It is the reference the engine's pipeline follows.
func Apply(kind abi.Kind, ids []string, scores []float32, out *plugin.Output, k int) []string {
	n := len(ids)
	idx := make([]int, 0, n)
	switch kind {
	case abi.KindRank, abi.KindRules:
		for i := range n {
			if kind == abi.KindRules && !out.Keep[i] {
				continue
			}
			idx = append(idx, i)
		}
		sort.SliceStable(idx, func(a, b int) bool { return out.Scores[idx[a]] > out.Scores[idx[b]] })
		if kind == abi.KindRules {
			idx = pin(idx, out.Pin)
		}
	case abi.KindDiversity:
		seen := make([]bool, n)
		for _, o := range out.Order {
			idx = append(idx, int(o))
			seen[o] = true
		}
		for i := range n {
			if !seen[i] {
				idx = append(idx, i)
			}
		}
	}
	ranked := make([]string, 0, min(k, len(idx)))
	for _, i := range idx[:min(k, len(idx))] {
		ranked = append(ranked, ids[i])
	}
	return ranked
}

// pin moves each pinned candidate (in candidate index order) to its position.
func pin(idx []int, pins []int32) []int {
	var pinned []int
	for _, i := range idx {
		if pins[i] >= 0 {
			pinned = append(pinned, i)
		}
	}
	sort.Ints(pinned)
	for _, i := range pinned {
		at := slices.Index(idx, i)
		idx = slices.Delete(idx, at, at+1)
		to := min(int(pins[i]), len(idx))
		idx = slices.Insert(idx, to, i)
	}
	return idx
}

// Golden runs the fixture at path (a .json file) through the plugin in wasm and compares
// the result with path's .golden.json twin; with -update it writes the twin instead.
// Scores match within a relative 1e-5, so guests in different languages share goldens.
func Golden(t *testing.T, wasm []byte, path string) {
	t.Helper()
	f, err := ReadFixture(path)
	if err != nil {
		t.Fatal(err)
	}
	p := Start(t, wasm, f.Params)
	got, err := Run(p, f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	golden := strings.TrimSuffix(path, ".json") + ".golden.json"
	if *update {
		data, _ := json.MarshalIndent(got, "", "  ")
		if err := os.WriteFile(golden, append(data, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	data, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	var want Result
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatalf("%s: %v", golden, err)
	}
	if diff := Compare(&want, got, 1e-5); diff != "" {
		t.Errorf("%s (%s@%.12s): %s", path, p.Name(), p.Version(), diff)
	}
}

// Compare returns "" if got matches want (scores within the relative tolerance tol), or
// the first difference.
func Compare(want, got *Result, tol float64) string {
	if len(want.Scores) != len(got.Scores) {
		return fmt.Sprintf("%d scores, want %d", len(got.Scores), len(want.Scores))
	}
	for i := range want.Scores {
		w, g := float64(want.Scores[i]), float64(got.Scores[i])
		if math.Abs(w-g) > tol*max(1, math.Abs(w)) {
			return fmt.Sprintf("score %d = %v, want %v", i, g, w)
		}
	}
	if fmt.Sprint(want.Keep) != fmt.Sprint(got.Keep) {
		return fmt.Sprintf("keep = %v, want %v", got.Keep, want.Keep)
	}
	if fmt.Sprint(want.Pin) != fmt.Sprint(got.Pin) {
		return fmt.Sprintf("pin = %v, want %v", got.Pin, want.Pin)
	}
	if fmt.Sprint(want.Order) != fmt.Sprint(got.Order) {
		return fmt.Sprintf("order = %v, want %v", got.Order, want.Order)
	}
	if fmt.Sprint(want.Ranked) != fmt.Sprint(got.Ranked) {
		return fmt.Sprintf("ranked = %v, want %v", got.Ranked, want.Ranked)
	}
	return ""
}

var (
	buildMu sync.Mutex
	built   = map[string][]byte{}
)

// Build builds the guest in directory src (relative to the repository root, for example
// "plugins/rank/linear/go") with scripts/build-wasm.sh, at most once per test binary and
// through the script's content-addressed cache. cflags are extra clang flags for C guests.
func Build(tb testing.TB, src, cflags string) []byte {
	tb.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	key := src + "\x00" + cflags
	if b, ok := built[key]; ok {
		return b
	}
	root, err := repoRoot()
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(root, "scripts", "build-wasm.sh"), src, "-")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "PODIUM_CFLAGS="+cflags)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		tb.Fatalf("build %s: %v\n%s", src, err, errb.Bytes())
	}
	built[key] = out.Bytes()
	return out.Bytes()
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("sdktest: no go.mod above %s", dir)
		}
		dir = parent
	}
}
