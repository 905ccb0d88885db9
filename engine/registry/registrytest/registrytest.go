// Package registrytest builds the Wasm test plugins of the live-operations tests and makes
// distinct versions of them. Only tests import it.
package registrytest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/podium-rank/podium/engine/plugin"
	"github.com/podium-rank/podium/sdk/abi"
)

// LiveSrc is the source directory of the live test plugin, relative to the repository
// root: a rank plugin scoring sign * retrieval_score that misbehaves when its params say
// so (see its live.c).
const LiveSrc = "engine/registry/testdata/live"

var (
	mu    sync.Mutex
	built = map[string][]byte{}
)

// Root returns the repository root: the nearest directory above the working directory
// that holds go.mod.
func Root(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatal("registrytest: no go.mod above the working directory")
		}
		dir = up
	}
}

// Build builds the guest in src (relative to the repository root) with
// scripts/build-wasm.sh and returns its bytes. Builds are cached per process (and by the
// script on disk).
func Build(t testing.TB, src string) []byte {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if b, ok := built[src]; ok {
		return b
	}
	root := Root(t)
	out := filepath.Join(t.TempDir(), "out.wasm")
	cmd := exec.Command(filepath.Join(root, "scripts", "build-wasm.sh"), src, out)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("build %s: %v\n%s", src, err, stderr.Bytes())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	built[src] = b
	return b
}

// Live returns the live test plugin's .wasm.
func Live(t testing.TB) []byte { return Build(t, LiveSrc) }

// WithManifest returns a copy of wasm whose embedded manifest edit changed: a distinct
// version (sha256) of the same code when the change is, say, the description.
func WithManifest(t testing.TB, wasm []byte, edit func(m *abi.Manifest)) []byte {
	t.Helper()
	m, err := plugin.ReadManifest(wasm)
	if err != nil {
		t.Fatal(err)
	}
	edit(m)
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	out, err := abi.SetCustomSection(wasm, abi.ManifestSection, data)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Version returns the n-th distinct version of wasm (same code, manifest description
// "vN").
func Version(t testing.TB, wasm []byte, n int) []byte {
	t.Helper()
	return WithManifest(t, wasm, func(m *abi.Manifest) { m.Description = fmt.Sprintf("v%d", n) })
}

// WithParams returns a distinct version of wasm whose default params are params (a JSON
// object), e.g. {"trap":"always"} for the live plugin.
func WithParams(t testing.TB, wasm []byte, params string) []byte {
	t.Helper()
	return WithManifest(t, wasm, func(m *abi.Manifest) { m.Params = json.RawMessage(params) })
}
