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
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/podium-rank/podium/engine/plugin"
	"github.com/podium-rank/podium/sdk/abi"
	"github.com/podium-rank/podium/sdk/sdktest/fixture"
)

// The fixture types, re-exported for tests.
type (
	Fixture   = fixture.Fixture
	Candidate = fixture.Candidate
	Result    = fixture.Result
	Dict      = fixture.Dict
)

// ReadFixture reads a JSON fixture (see fixture.Read).
func ReadFixture(path string) (*Fixture, error) { return fixture.Read(path) }

// Run runs one fixture through p with the shared Dict.
func Run(p *plugin.Plugin, f *Fixture) (*Result, error) { return fixture.Run(dict, p, f) }

// Compare returns "" if got matches want within tol (see fixture.Compare).
func Compare(want, got *Result, tol float64) string { return fixture.Compare(want, got, tol) }

var update = flag.Bool("update", false, "rewrite the golden files of sdktest.Golden")

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
	if diff := fixture.Compare(&want, got, 1e-5); diff != "" {
		t.Errorf("%s (%s@%.12s): %s", path, p.Name(), p.Version(), diff)
	}
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

// Manifest reads and checks the manifest.json at path, failing the test if it is invalid.
func Manifest(tb testing.TB, path string) *abi.Manifest {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	m, err := abi.ParseManifest(b)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// EffectiveParams returns the params JSON the host gives a plugin whose manifest is at
// manifestPath when a stage starts it with params (sdk/ABI.md §2): the manifest's default
// params overlaid key by key, with "features" and "attributes" set. It is the host's own
// merge (plugin.MergeParams), so native tests of a plugin see exactly what its Wasm build sees.
func EffectiveParams(tb testing.TB, manifestPath string, params []byte) []byte {
	tb.Helper()
	out, _, _, err := plugin.MergeParams(*Manifest(tb, manifestPath), params)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}
