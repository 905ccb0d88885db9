package registry_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/podium-rank/podium/engine/plugin"
	"github.com/podium-rank/podium/engine/registry"
	"github.com/podium-rank/podium/engine/registry/registrytest"
	"github.com/podium-rank/podium/sdk/abi"
)

func ok(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func truth(t *testing.T, cond bool, format string, args ...any) {
	t.Helper()
	if !cond {
		t.Fatalf(format, args...)
	}
}

func newRuntime(t *testing.T) *plugin.Runtime {
	t.Helper()
	rt, err := plugin.NewRuntime(context.Background(), plugin.Config{})
	ok(t, err)
	t.Cleanup(func() { rt.Close(context.Background()) })
	return rt
}

func open(t *testing.T, rt *plugin.Runtime, dir string) *registry.Registry {
	t.Helper()
	r, err := registry.Open(registry.Config{Dir: dir, Runtime: rt})
	ok(t, err)
	t.Cleanup(func() { r.Close(context.Background()) })
	return r
}

func TestPushValidatesAndStores(t *testing.T) {
	ctx := context.Background()
	rt := newRuntime(t)
	dir := t.TempDir()
	r := open(t, rt, dir)
	wasm := registrytest.Live(t)

	p, existed, err := r.Push(ctx, wasm, "alice")
	ok(t, err)
	truth(t, !existed, "first push reported existed")
	truth(t, p.Version == plugin.Version(wasm) && p.Name == "test/live" && p.Kind == abi.KindRank, "plugin %+v", p)
	truth(t, p.UploadedBy == "alice" && p.Size == len(wasm) && p.Validation.SmokeCandidates == 64, "metadata %+v", p)
	_, err = os.Stat(filepath.Join(dir, "plugins", p.Version+".wasm"))
	ok(t, err)

	again, existed, err := r.Push(ctx, wasm, "bob")
	ok(t, err)
	truth(t, existed && again.UploadedBy == "alice", "second push: existed %v, %+v", existed, again)

	// Refusals: each says why, and nothing is stored.
	trap := registrytest.WithParams(t, wasm, `{"trap":"always"}`)
	badABI := registrytest.WithManifest(t, wasm, func(m *abi.Manifest) { m.ABI = 99 })
	for _, c := range []struct {
		name string
		wasm []byte
		want string
	}{
		{"empty", nil, "body is empty"},
		{"garbage", []byte("not wasm at all"), "invalid plugin"},
		{"no manifest", wasm[:8], "no \"podium.manifest\" custom section"},
		{"abi", badABI, "ABI version 99"},
		{"trap", trap, "smoke call on 64 synthetic candidates failed"},
	} {
		_, _, err := r.Push(ctx, c.wasm, "alice")
		truth(t, errors.Is(err, registry.ErrInvalid) && strings.Contains(err.Error(), c.want), "%s: err %v, want %q", c.name, err, c.want)
	}
	truth(t, len(r.Plugins()) == 1, "refused plugins were stored: %d plugins", len(r.Plugins()))
	trapErr := func() error { _, _, err := r.Push(ctx, trap, "x"); return err }()
	truth(t, strings.Contains(trapErr.Error(), "trap"), "the smoke error does not name the fault: %v", trapErr)
}

func TestResolveAndDelete(t *testing.T) {
	ctx := context.Background()
	r := open(t, newRuntime(t), t.TempDir())
	wasm := registrytest.Live(t)
	a, _, err := r.Push(ctx, registrytest.Version(t, wasm, 1), "t")
	ok(t, err)
	b, _, err := r.Push(ctx, registrytest.Version(t, wasm, 2), "t")
	ok(t, err)

	v, err := r.Resolve(a.Version[:12])
	ok(t, err)
	truth(t, v == a.Version, "resolve prefix: %s", v)
	_, err = r.Resolve("zzzzzzzz")
	truth(t, errors.Is(err, registry.ErrNotFound), "unknown prefix: %v", err)
	_, err = r.Resolve("ab")
	truth(t, errors.Is(err, registry.ErrNotFound), "short prefix: %v", err)
	v, err = r.Resolve("native:linear")
	truth(t, err == nil && v == "native:linear", "native resolves to itself: %q %v", v, err)

	_, err = r.SetStage(registry.Stage{Name: "rank", Kind: "rank", Champion: registry.Variant{Version: a.Version}}, 0, registry.Event{Action: registry.ActionActivate})
	ok(t, err)
	_, err = r.Delete(ctx, a.Version, "t")
	truth(t, errors.Is(err, registry.ErrInUse) && strings.Contains(err.Error(), `"rank"`), "delete in use: %v", err)
	del, err := r.Delete(ctx, b.Version[:10], "t")
	ok(t, err)
	truth(t, del.Version == b.Version, "deleted %s", del.Version)
	_, err = r.Plugin(b.Version)
	truth(t, errors.Is(err, registry.ErrNotFound), "deleted plugin still found: %v", err)
	_, err = os.Stat(filepath.Join(r.Dir(), "plugins", b.Version+".wasm"))
	truth(t, errors.Is(err, os.ErrNotExist), "deleted .wasm still on disk: %v", err)
	ev := r.Events(0)
	truth(t, len(ev) == 4 && ev[3].Action == registry.ActionDelete && ev[2].Action == registry.ActionActivate, "events %+v", ev)
}

func TestSetStageRules(t *testing.T) {
	ctx := context.Background()
	r := open(t, newRuntime(t), "")
	wasm := registrytest.Live(t)
	a, _, err := r.Push(ctx, wasm, "t")
	ok(t, err)
	ev := registry.Event{Action: registry.ActionActivate, Caller: "t"}
	champ := registry.Variant{Version: a.Version}
	for _, c := range []struct {
		st   registry.Stage
		want error
		msg  string
	}{
		{registry.Stage{Name: "Rank", Kind: "rank", Champion: champ}, registry.ErrInvalid, "stage name"},
		{registry.Stage{Name: "rank", Kind: "sort", Champion: champ}, registry.ErrInvalid, "kind"},
		{registry.Stage{Name: "rules", Kind: "rules", Champion: champ}, registry.ErrInvalid, "is a rank plugin"},
		{registry.Stage{Name: "rank", Kind: "rank", Champion: registry.Variant{Version: strings.Repeat("0", 64)}}, registry.ErrNotFound, "push it first"},
		{registry.Stage{Name: "rank", Kind: "rank", Champion: champ, Challengers: []registry.Challenger{
			{Name: "a", Variant: champ, Mode: "split", Share: 0.6}, {Name: "b", Variant: champ, Mode: "split", Share: 0.6}}}, registry.ErrInvalid, "add up to"},
		{registry.Stage{Name: "rank", Kind: "rank", Champion: champ, Challengers: []registry.Challenger{
			{Name: "a", Variant: champ, Mode: "mirror", Share: 0.1}}}, registry.ErrInvalid, "mode"},
		{registry.Stage{Name: "rank", Kind: "rank", Champion: champ, Challengers: []registry.Challenger{
			{Name: "a", Variant: champ, Mode: "shadow", Share: 0}}}, registry.ErrInvalid, "share"},
		{registry.Stage{Name: "rank", Kind: "rank", Champion: champ, Challengers: []registry.Challenger{
			{Name: "champion", Variant: champ, Mode: "shadow", Share: 1}}}, registry.ErrInvalid, "not \"champion\""},
		{registry.Stage{Name: "rank", Kind: "rank", Champion: registry.Variant{Version: a.Version, Params: []byte(`[1]`)}}, registry.ErrInvalid, "JSON object"},
	} {
		_, err := r.SetStage(c.st, 0, ev)
		truth(t, errors.Is(err, c.want) && strings.Contains(err.Error(), c.msg), "%+v: err %v, want %v %q", c.st, err, c.want, c.msg)
	}
	s, err := r.SetStage(registry.Stage{Name: "rank", Kind: "rank", Champion: champ, Challengers: []registry.Challenger{
		{Variant: champ, Mode: "shadow", Share: 1}}}, 0, ev)
	ok(t, err)
	truth(t, s.Revision == 1 && s.Challengers[0].Name == "c-"+a.Version[:8], "stored %+v", s)
	_, err = r.SetStage(s, 7, ev)
	truth(t, errors.Is(err, registry.ErrConflict), "stale revision: %v", err)
	s, err = r.SetStage(s, 1, ev)
	ok(t, err)
	truth(t, s.Revision == 2, "revision %d", s.Revision)
	// A new stage goes after the last stage of its kind.
	_, err = r.SetStage(registry.Stage{Name: "div", Kind: "diversity", Champion: registry.Variant{Version: "native:by-retrieval"}}, 0, ev)
	ok(t, err)
	_, err = r.SetStage(registry.Stage{Name: "rerank", Kind: "rank", Champion: champ}, 0, ev)
	ok(t, err)
	var names []string
	for _, s := range r.Stages() {
		names = append(names, s.Name)
	}
	truth(t, strings.Join(names, ",") == "rank,rerank,div", "stage order %v", names)
}

// TestRestartRestores checks that plugins, stages and events survive a restart, and that
// a damaged .wasm in use stops Open with a clear error.
func TestRestartRestores(t *testing.T) {
	ctx := context.Background()
	rt := newRuntime(t)
	dir := t.TempDir()
	r := open(t, rt, dir)
	wasm := registrytest.Live(t)
	a, _, err := r.Push(ctx, registrytest.Version(t, wasm, 1), "t")
	ok(t, err)
	b, _, err := r.Push(ctx, registrytest.Version(t, wasm, 2), "t")
	ok(t, err)
	st := registry.Stage{Name: "rank", Kind: "rank", Deadline: registry.Duration(5e6), Fallback: "retrieval", Cut: 50,
		Champion:    registry.Variant{Version: a.Version, Params: []byte(`{"sign": -1}`)},
		Challengers: []registry.Challenger{{Name: "b", Variant: registry.Variant{Version: b.Version}, Mode: "split", Share: 0.25, Canary: &registry.Canary{MaxErrorRate: 0.1}}},
		History:     []registry.Variant{{Version: b.Version}}}
	want, err := r.SetStage(st, 0, registry.Event{Action: registry.ActionActivate, Caller: "t"})
	ok(t, err)
	ok(t, r.Close(ctx))

	r2 := open(t, rt, dir)
	got := r2.Stages()
	truth(t, len(got) == 1, "stages %+v", got)
	g := got[0]
	truth(t, g.Revision == want.Revision && g.Champion.Same(want.Champion) && g.Deadline == want.Deadline && g.Cut == 50 && g.Fallback == "retrieval",
		"restored %+v, want %+v", g, want)
	truth(t, len(g.Challengers) == 1 && g.Challengers[0].Name == "b" && g.Challengers[0].Share == 0.25 && g.Challengers[0].Canary.MaxErrorRate == 0.1, "challengers %+v", g.Challengers)
	truth(t, len(r2.Plugins()) == 2 && len(r2.Events(0)) == 3, "plugins %d events %d", len(r2.Plugins()), len(r2.Events(0)))
	m, release, err := r2.Acquire(ctx, a.Version)
	ok(t, err)
	truth(t, m.Version() == a.Version, "acquired %s", m.Version())
	release()
	ok(t, r2.Close(ctx))

	// Damage the champion's .wasm: Open refuses to start on it.
	ok(t, os.WriteFile(filepath.Join(dir, "plugins", a.Version+".wasm"), []byte("junk"), 0o644))
	_, err = registry.Open(registry.Config{Dir: dir, Runtime: rt})
	truth(t, err != nil && strings.Contains(err.Error(), `used by stage "rank"`), "damaged blob: %v", err)
	// A leftover temporary file from a crash is removed.
	ok(t, os.WriteFile(filepath.Join(dir, "registry.json.tmp-123"), []byte("x"), 0o644))
	ok(t, os.WriteFile(filepath.Join(dir, "plugins", a.Version+".wasm"), registrytest.Version(t, wasm, 1), 0o644))
	r3 := open(t, rt, dir)
	_, err = os.Stat(filepath.Join(dir, "registry.json.tmp-123"))
	truth(t, errors.Is(err, os.ErrNotExist) && len(r3.Stages()) == 1, "temp file left: %v", err)
}

// TestModuleCache checks that the module cache shares compiled modules, keeps at most
// MaxIdleModules idle ones and closes the rest.
func TestModuleCache(t *testing.T) {
	ctx := context.Background()
	rt := newRuntime(t)
	r, err := registry.Open(registry.Config{Runtime: rt, MaxIdleModules: 2})
	ok(t, err)
	defer r.Close(ctx)
	wasm := registrytest.Live(t)
	var versions []string
	for i := range 5 {
		p, _, err := r.Push(ctx, registrytest.Version(t, wasm, i), "t")
		ok(t, err)
		versions = append(versions, p.Version)
	}
	truth(t, r.Modules() == registry.ModuleStats{Idle: 2}, "after pushes: %+v", r.Modules())
	var releases []func()
	var mods []*plugin.Module
	for _, v := range versions {
		m, rel, err := r.Acquire(ctx, v)
		ok(t, err)
		mods, releases = append(mods, m), append(releases, rel)
	}
	m2, rel2, err := r.Acquire(ctx, versions[0])
	ok(t, err)
	truth(t, m2 == mods[0], "a held module was not shared")
	truth(t, r.Modules() == registry.ModuleStats{Held: 5}, "held: %+v", r.Modules())
	for _, rel := range releases {
		rel()
		rel() // idempotent
	}
	truth(t, r.Modules() == registry.ModuleStats{Held: 1, Idle: 2}, "after release: %+v", r.Modules())
	rel2()
	truth(t, r.Modules() == registry.ModuleStats{Idle: 2}, "all released: %+v", r.Modules())
	// An evicted module was closed: starting it fails.
	_, err = mods[1].Start(ctx, plugin.PluginConfig{})
	truth(t, errors.Is(err, plugin.ErrClosed), "evicted module still usable: %v", err)
}

// TestConcurrentPushes pushes the same and different versions from many goroutines.
func TestConcurrentPushes(t *testing.T) {
	ctx := context.Background()
	r := open(t, newRuntime(t), t.TempDir())
	wasm := registrytest.Live(t)
	vs := [][]byte{registrytest.Version(t, wasm, 1), registrytest.Version(t, wasm, 2), registrytest.Version(t, wasm, 3)}
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := r.Push(ctx, vs[g%3], "t"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	truth(t, len(r.Plugins()) == 3, "%d plugins", len(r.Plugins()))
	pushes := 0
	for _, e := range r.Events(0) {
		if e.Action == registry.ActionPush {
			pushes++
		}
	}
	truth(t, pushes == 3, "%d push events for 3 versions", pushes)
}
