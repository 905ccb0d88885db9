// Package wasmtest builds Wasm guests from source for tests and benchmarks, through
// scripts/build-wasm.sh and its content-addressed cache.
//
// Each guest is built at most once per test binary; across binaries and runs the script's
// cache keyed by the sources' sha256 makes a rebuild cost a hash. It is goroutine-safe.
package wasmtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	mu    sync.Mutex
	built = map[string][]byte{}
)

// Root returns the repository root: the nearest directory above the working directory
// holding go.mod.
func Root() (string, error) {
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
			return "", fmt.Errorf("wasmtest: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Build returns the module built from the guest source directory src, a path relative to
// the repository root (for example "plugins/rank/linear/go"). cflags are extra clang flags
// for C guests. It fails the test if the toolchain is missing or the build fails.
func Build(tb testing.TB, src string, cflags string) []byte {
	tb.Helper()
	b, err := BuildErr(src, cflags)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// BuildErr is Build returning an error instead of failing a test.
func BuildErr(src string, cflags string) ([]byte, error) {
	key := src + "\x00" + cflags
	mu.Lock()
	defer mu.Unlock()
	if b, ok := built[key]; ok {
		return b, nil
	}
	root, err := Root()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(root, "scripts", "build-wasm.sh"), src, "-")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "PODIUM_CFLAGS="+cflags)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("wasmtest: build %s: %v\n%s", src, err, errb.Bytes())
	}
	built[key] = out.Bytes()
	return out.Bytes(), nil
}

// CacheDir returns a directory under the repository's .cache for wazero's compilation
// cache, shared by every test binary, so a guest compiles once per machine rather than
// once per test.
func CacheDir(tb testing.TB) string {
	tb.Helper()
	root, err := Root()
	if err != nil {
		tb.Fatal(err)
	}
	dir := filepath.Join(root, ".cache", "wazero")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	return dir
}
