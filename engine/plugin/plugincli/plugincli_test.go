package plugincli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/podium-rank/podium/engine/plugin/internal/wasmtest"
	"github.com/podium-rank/podium/sdk/abi"
)

func writeWasm(t *testing.T, src string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "plugin.wasm")
	if err := os.WriteFile(path, wasmtest.Build(t, src, ""), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	args = append([]string{args[0], "-cache", wasmtest.CacheDir(t)}, args[1:]...)
	code := Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestValidate(t *testing.T) {
	path := writeWasm(t, "plugins/rank/linear/c")
	code, out, errs := run(t, "validate", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"plugin   rank/linear", "features retrieval_score, popularity", "smoke    ok: 16 candidates"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Params that name a feature without a weight column fail in init, readably.
	code, _, errs = run(t, "validate", "-params", `{"weights":{"nope":1}}`, path)
	if code != 1 || !strings.Contains(errs, "init") {
		t.Fatalf("bad params: exit %d, %s", code, errs)
	}
}

func TestValidateABIMismatch(t *testing.T) {
	wasm := wasmtest.Build(t, "plugins/rank/linear/c", "")
	wasm, err := abi.SetCustomSection(wasm, abi.ManifestSection, []byte(`{"name":"rank/linear","kind":"rank","abi":7}`))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "old.wasm")
	os.WriteFile(path, wasm, 0o644)
	code, _, errs := run(t, "validate", path)
	if code != 1 || !strings.Contains(errs, "built for ABI version 7") || !strings.Contains(errs, "speaks ABI version 1") {
		t.Fatalf("exit %d: %s", code, errs)
	}
}

func TestTestCommand(t *testing.T) {
	path := writeWasm(t, "plugins/rank/linear/go")
	root, _ := wasmtest.Root()
	fixtures := filepath.Join(root, "plugins", "rank", "linear", "testdata")
	code, out, errs := run(t, "test", path, fixtures)
	if code != 0 || strings.Count(out, "ok   ") < 3 {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	// A fixture whose golden disagrees fails.
	dir := t.TempDir()
	fx, _ := os.ReadFile(filepath.Join(fixtures, "default.json"))
	os.WriteFile(filepath.Join(dir, "x.json"), fx, 0o644)
	os.WriteFile(filepath.Join(dir, "x.golden.json"), []byte(`{"scores":[1,2,3,4,5,6],"ranked":["sku-1"]}`), 0o644)
	code, out, _ = run(t, "test", path, dir)
	if code != 1 || !strings.Contains(out, "FAIL") {
		t.Fatalf("a wrong golden passed: exit %d: %s", code, out)
	}
	// -update rewrites it, after which it passes.
	if code, _, errs := run(t, "test", "-update", path, dir); code != 0 {
		t.Fatal(errs)
	}
	if code, out, _ := run(t, "test", path, dir); code != 0 {
		t.Fatalf("after -update: %s", out)
	}
}

func TestBench(t *testing.T) {
	path := writeWasm(t, "plugins/rank/linear/c")
	code, out, errs := run(t, "bench", "-n", "10,100", "-dur", "5ms", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "ns/cand") || !strings.Contains(out, "     100 ") {
		t.Fatalf("bench output:\n%s", out)
	}
}

func TestUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if Main(nil, &out, &errb) != 2 || Main([]string{"frobnicate", "x"}, &out, &errb) != 2 || Main([]string{"validate"}, &out, &errb) != 2 {
		t.Fatal("usage errors must exit 2")
	}
	if code, _, errs := run(t, "validate", "/nonexistent.wasm"); code != 1 || !strings.Contains(errs, "no such file") {
		t.Fatalf("missing file: %d %s", code, errs)
	}
}
