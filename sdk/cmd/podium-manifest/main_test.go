package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEmbedAndShow(t *testing.T) {
	dir := t.TempDir()
	in, man, out := filepath.Join(dir, "in.wasm"), filepath.Join(dir, "m.json"), filepath.Join(dir, "out.wasm")
	os.WriteFile(in, []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}, 0o644)
	os.WriteFile(man, []byte(`{"name":"rank/x","kind":"rank","abi":1}`), 0o644)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"embed", in, man, out}, &stdout, &stderr); code != 0 {
		t.Fatalf("embed: %d %s", code, stderr.String())
	}
	if code := run([]string{"show", out}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), `"rank/x"`) {
		t.Fatalf("show: %d %q %s", code, stdout.String(), stderr.String())
	}
	os.WriteFile(man, []byte(`{"name":"Bad Name","kind":"rank","abi":1}`), 0o644)
	stderr.Reset()
	if code := run([]string{"embed", in, man, out}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "name") {
		t.Fatalf("a bad manifest was embedded: %d %s", code, stderr.String())
	}
	if code := run([]string{"show", in}, &stdout, &stderr); code != 1 {
		t.Fatal("show found a manifest in a module without one")
	}
	if code := run(nil, &stdout, &stderr); code != 2 {
		t.Fatal("no args must be a usage error")
	}
}
