package plugin

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/podium-rank/podium/engine/plugin/internal/wasmtest"
	"github.com/podium-rank/podium/sdk/abi"
)

func withManifest(t *testing.T, wasm []byte, manifest string) []byte {
	t.Helper()
	out, err := abi.SetCustomSection(wasm, abi.ManifestSection, []byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

const okManifest = `{"name":"test/x","kind":"rank","abi":1}`

func TestLoadRefuses(t *testing.T) {
	rt := runtimeForTest(t)
	ctx := context.Background()
	hostile := wasmtest.Build(t, "engine/plugin/testdata/hostile", "")
	loops := wasmtest.Build(t, "engine/plugin/testdata/loops", "")
	hdr := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}
	envImport := append(append([]byte(nil), hdr...),
		1, 4, 1, 0x60, 0, 0, // type () -> ()
		2, 9, 1, 3, 'e', 'n', 'v', 1, 'f', 0, 0, // import env.f
		5, 3, 1, 0, 1, // memory 1
	)
	for name, c := range map[string]struct {
		wasm []byte
		want string
	}{
		"not wasm":         {[]byte("hello"), "not a wasm binary"},
		"no manifest":      {loops, `no "podium.manifest" custom section`},
		"bad manifest":     {withManifest(t, hostile, `{"name":"x","kind":"sort","abi":1}`), `kind "sort"`},
		"abi in manifest":  {withManifest(t, hostile, `{"name":"test/x","kind":"rank","abi":2}`), `plugin "test/x" was built for ABI version 2 (per its manifest), but this engine speaks ABI version 1`},
		"missing exports":  {withManifest(t, loops, okManifest), "does not export podium_abi_version"},
		"foreign import":   {withManifest(t, envImport, okManifest), "imports env.f"},
		"garbage sections": {append(append([]byte(nil), hdr...), 1, 200), "not a wasm binary"},
	} {
		_, err := rt.Load(ctx, c.wasm)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %q, want it to mention %q", name, err, c.want)
		}
	}
	var ve *ABIVersionError
	_, err := rt.Load(ctx, withManifest(t, hostile, `{"name":"test/x","kind":"rank","abi":2}`))
	if !errors.As(err, &ve) || ve.Got != 2 || ve.Want != abi.Version || !errors.Is(err, ErrABIVersion) {
		t.Fatalf("ABI mismatch error = %#v", err)
	}
}

func TestABIVersionExportChecked(t *testing.T) {
	wasm := wasmtest.Build(t, "engine/plugin/testdata/hostile", "-DPODIUM_ABI_VERSION=2")
	m, err := runtimeForTest(t).Load(context.Background(), wasm)
	if err != nil {
		t.Fatal(err) // the manifest says 1: Load cannot tell
	}
	defer m.Close(context.Background())
	p, err := m.Start(context.Background(), PluginConfig{})
	var ve *ABIVersionError
	if p != nil || !errors.As(err, &ve) || ve.Where != "podium_abi_version export" || ve.Got != 2 {
		t.Fatalf("Start = %v, %v", p, err)
	}
	if !strings.Contains(err.Error(), "ABI version 2") || !strings.Contains(err.Error(), "ABI version 1") {
		t.Fatalf("the error does not name both versions: %v", err)
	}
}

func TestModuleIdentity(t *testing.T) {
	wasm := wasmtest.Build(t, "engine/plugin/testdata/hostile", "")
	m := loadTestModule(t, "engine/plugin/testdata/hostile")
	if m.Version() != Version(wasm) || len(m.Version()) != 64 || m.Size() != len(wasm) {
		t.Fatalf("version %s size %d", m.Version(), m.Size())
	}
	man := m.Manifest()
	man.Features[0] = "changed"
	if m.Manifest().Features[0] != "f0" {
		t.Fatal("Manifest returned shared slices")
	}
}
