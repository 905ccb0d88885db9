package features

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestKVSaveLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "snap")
	kv := NewKV(MinKVBytes)
	requireNoError(t, kv.PutFloat32s([]byte("a"), []float32{1, 2}), "Put a")
	requireNoError(t, kv.Save(dir), "first Save")
	requireNoError(t, kv.PutFloat32s([]byte("b"), []float32{3}), "Put b")
	requireNoError(t, kv.Save(dir), "second Save replaces")
	if _, err := os.Stat(dir + ".old"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf(".old left behind: %v", err)
	}

	got, err := LoadKV(dir, MinKVBytes)
	requireNoError(t, err, "LoadKV")
	v, ok := got.GetFloat32s([]byte("b"), nil)
	requireEqual(t, ok, true, "b after load")
	requireSameFloats(t, v, []float32{3}, "b after load")
	v, ok = got.GetFloat32s([]byte("a"), nil)
	requireEqual(t, ok && len(v) == 2 && v[1] == 2, true, "a after load")

	_, err = LoadKV(dir, 4*MinKVBytes)
	if err == nil {
		t.Fatal("LoadKV with another capacity: no error")
	}
	_, err = LoadKV(filepath.Join(t.TempDir(), "none"), MinKVBytes)
	requireErrorIs(t, err, os.ErrNotExist, "LoadKV of nothing")

	// A crash between Save's renames leaves only dir.old: LoadKV falls back to it.
	requireNoError(t, os.Rename(dir, dir+".old"), "simulate crash")
	got, err = LoadKV(dir, MinKVBytes)
	requireNoError(t, err, "LoadKV from .old")
	requireEqual(t, got.Has([]byte("b")), true, "b from .old")
}

func TestLoadKVDetectsDamage(t *testing.T) {
	kv := NewKV(MinKVBytes)
	for i := 0; i < 1000; i++ {
		requireNoError(t, kv.PutUint64s([]byte{byte(i), byte(i >> 8)}, []uint64{uint64(i)}), "Put")
	}
	damage := map[string]func(t *testing.T, dir string){
		"flipped data byte": func(t *testing.T, dir string) {
			p := firstDataFile(t, dir)
			b, err := os.ReadFile(p)
			requireNoError(t, err, "read")
			b[len(b)/2] ^= 0x40
			requireNoError(t, os.WriteFile(p, b, 0o644), "write")
		},
		"truncated data file": func(t *testing.T, dir string) {
			p := firstDataFile(t, dir)
			requireNoError(t, os.Truncate(p, 3), "truncate")
		},
		"extra data file": func(t *testing.T, dir string) {
			requireNoError(t, os.WriteFile(filepath.Join(dir, dataDirName, "data.99.bin"), nil, 0o644), "write")
		},
		"manifest without end line": func(t *testing.T, dir string) {
			p := filepath.Join(dir, manifestName)
			b, err := os.ReadFile(p)
			requireNoError(t, err, "read")
			requireNoError(t, os.WriteFile(p, b[:len(b)-len(manifestEnd)-1], 0o644), "write")
		},
		"garbage manifest": func(t *testing.T, dir string) {
			requireNoError(t, os.WriteFile(filepath.Join(dir, manifestName), []byte("x\n"+manifestEnd+"\n"), 0o644), "write")
		},
	}
	for name, f := range damage {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "snap")
			requireNoError(t, kv.Save(dir), "Save")
			f(t, dir)
			_, err := LoadKV(dir, MinKVBytes)
			requireErrorIs(t, err, ErrCorrupt, "LoadKV")
		})
	}
}

func firstDataFile(t *testing.T, dir string) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, dataDirName, "data.*.bin"))
	requireNoError(t, err, "glob")
	if len(m) == 0 {
		t.Fatal("no data files")
	}
	return m[0]
}

func TestUserStoreSaveLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "users")
	s := NewUserStore(MinKVBytes)
	requireNoError(t, s.PutUser(42, []int{3}, []float32{0.5}, []float32{1, 2}), "PutUser")
	requireNoError(t, s.Save(dir), "Save")
	got, err := LoadUserStore(dir, MinKVBytes)
	requireNoError(t, err, "LoadUserStore")
	var r UserRow
	requireEqual(t, got.GetUser(42, &r), true, "GetUser after load")
	requireSameFloats(t, r.Emb, []float32{1, 2}, "Emb after load")
	_, err = LoadUserStore(filepath.Join(dir, "nope"), MinKVBytes)
	requireErrorIs(t, err, os.ErrNotExist, "LoadUserStore of nothing")
}
