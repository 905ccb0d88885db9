package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/podium-rank/podium/engine"
	"github.com/podium-rank/podium/engine/admin/admintest"
	"github.com/podium-rank/podium/engine/registry/registrytest"
)

func TestCLI(t *testing.T) {
	env := admintest.Start(t, engine.LiveConfig{})
	dir := t.TempDir()
	wasm := registrytest.Live(t)
	f1, f2, bad := filepath.Join(dir, "v1.wasm"), filepath.Join(dir, "v2.wasm"), filepath.Join(dir, "bad.wasm")
	os.WriteFile(f1, registrytest.Version(t, wasm, 1), 0o644)
	os.WriteFile(f2, registrytest.Version(t, wasm, 2), 0o644)
	os.WriteFile(bad, registrytest.WithParams(t, wasm, `{"trap":"always"}`), 0o644)
	t.Setenv("PODIUM_ADMIN_TOKEN", admintest.Token)
	run := func(wantCode int, args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		args = append(args, "--admin", env.AdminURL)
		code := Main(args, &out, &errb)
		if code != wantCode {
			t.Fatalf("engine plugin %v: exit %d, want %d\nstdout: %s\nstderr: %s", args, code, wantCode, out.String(), errb.String())
		}
		return out.String() + errb.String()
	}
	out := run(0, "push", f1)
	if !strings.HasPrefix(out, "stored test/live ") {
		t.Fatalf("push: %s", out)
	}
	v1 := strings.Fields(out)[2]
	v2 := strings.Fields(run(0, "push", f2))[2]
	if out := run(0, "push", f1); !strings.HasPrefix(out, "already stored") {
		t.Fatalf("push again: %s", out)
	}
	if out := run(1, "push", bad); !strings.Contains(out, "smoke call") {
		t.Fatalf("bad push: %s", out)
	}
	if out := run(0, "ls"); strings.Count(out, "test/live") != 2 {
		t.Fatalf("ls: %s", out)
	}
	if out := run(0, "activate", "rank", v1[:8]); !strings.Contains(out, "champion "+v1[:12]) {
		t.Fatalf("activate: %s", out)
	}
	if out := env.Rank(t, "u1"); !strings.Contains(out, v1[:12]) {
		t.Fatalf("not served by v1: %s", out)
	}
	if out := run(0, "shadow", "rank", v2[:8], "--share", "1", "--params", `{"sign":-1}`, "--name", "rev"); !strings.Contains(out, "challenger rev") {
		t.Fatalf("shadow: %s", out)
	}
	if out := run(0, "split", "rank", v2[:8], "--share", "0.5"); !strings.Contains(out, "challenger c-"+v2[:8]) {
		t.Fatalf("split: %s", out)
	}
	for i := range 20 {
		env.Rank(t, "u"+string(rune('a'+i)))
	}
	out = run(0, "compare", "rank")
	if !strings.Contains(out, "rev") || !strings.Contains(out, "shadow") || !strings.Contains(out, "split") {
		t.Fatalf("compare: %s", out)
	}
	out = run(0, "stages")
	if !strings.Contains(out, "champion") || !strings.Contains(out, "c-"+v2[:8]) {
		t.Fatalf("stages: %s", out)
	}
	if out := run(0, "unchallenge", "rank", "rev"); !strings.Contains(out, "removed") {
		t.Fatalf("unchallenge: %s", out)
	}
	run(1, "unchallenge", "rank", "rev")
	if out := run(0, "activate", "rank", v2[:8], "--params", `{"sign":-1}`); !strings.Contains(out, v2[:12]) {
		t.Fatalf("activate v2: %s", out)
	}
	if out := run(0, "rollback", "rank"); !strings.Contains(out, "rolled back to "+v1[:12]) {
		t.Fatalf("rollback: %s", out)
	}
	if out := run(0, "events", "-n", "50"); !strings.Contains(out, "rollback") || !strings.Contains(out, "activate") {
		t.Fatalf("events: %s", out)
	}
	if out := run(1, "rm", v1[:8]); !strings.Contains(out, "uses") {
		t.Fatalf("rm in use: %s", out)
	}
	if out := run(0, "--json", "stages"); !strings.Contains(out, `"stages"`) {
		t.Fatalf("--json: %s", out)
	}
	// Usage errors and a wrong token.
	run(2, "activate", "rank")
	run(2, "shadow", "rank", v2, "--share", "0")
	run(2, "frobnicate")
	if out := run(1, "ls", "--token", "wrong"); !strings.Contains(out, "PODIUM_ADMIN_TOKEN") {
		t.Fatalf("wrong token: %s", out)
	}
	run(0, "validate", f1) // dispatched to engine/plugin/plugincli
	run(1, "validate", bad)
}
