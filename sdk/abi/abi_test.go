package abi

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestNewHeaderLayout(t *testing.T) {
	s := Shape{N: 1000, NFeat: 32, Dim: 16, QDim: 16, NAttr: 2, NCtx: 3, CtxBytes: 40, SIDs: true, SIDBytes: 9000}
	h, err := NewHeader(KindRules, 20, s)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Check(h.Len()); err != nil {
		t.Fatalf("Check on a fresh header: %v", err)
	}
	if err := h.Check(h.Len() - 1); err == nil {
		t.Fatal("Check accepted a block shorter than block_len")
	}
	// Sections must not overlap: sort by offset and compare with sizes.
	n := uint32(s.N)
	sizes := map[int]uint32{
		HIDs: 4 * n, HScore: 4 * n, HFeat: 4 * n * 32, HEmb: 4 * n * 16, HQEmb: 64, HAttr: 4 * n * 2,
		HCtx: 3 * ContextEntryBytes, HCtxStr: 40, HSID: 4 * (n + 1), HSIDData: 9000,
		HOutScore: 4 * n, HOutKeep: n, HOutPin: 4 * n, HOutOrder: 4 * n,
	}
	for w1, s1 := range sizes {
		for w2 := range sizes {
			if w1 == w2 {
				continue
			}
			if h[w1] <= h[w2] && h[w1]+s1 > h[w2] {
				t.Fatalf("section %d [%d,+%d) overlaps section %d at %d", w1, h[w1], s1, w2, h[w2])
			}
		}
	}
	if h[HKind] != 2 || h[HN] != 1000 || h[HK] != 20 || h[HFlags]&FlagStringIDs == 0 {
		t.Fatalf("header words wrong: %v", h[:12])
	}
	buf := make([]byte, h.Len())
	h.Put(buf)
	var g Header
	if err := g.Load(buf); err != nil || g != h {
		t.Fatalf("Load(Put(h)) = %v, %v", g, err)
	}
}

func TestNewHeaderRefuses(t *testing.T) {
	for _, s := range []Shape{{N: -1}, {N: MaxCandidates + 1}, {N: 1 << 20, NFeat: 1 << 10}} {
		if _, err := NewHeader(KindRank, 1, s); !errors.Is(err, ErrBlock) {
			t.Errorf("NewHeader(%+v) = %v, want ErrBlock", s, err)
		}
	}
}

func TestHeaderCheckRejects(t *testing.T) {
	base, err := NewHeader(KindRank, 5, Shape{N: 10, NFeat: 2})
	if err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(h *Header){
		"magic":      func(h *Header) { h[HMagic] = 0 },
		"abi":        func(h *Header) { h[HABI] = 2 },
		"kind":       func(h *Header) { h[HKind] = 9 },
		"misaligned": func(h *Header) { h[HFeat] += 4 },
		"in header":  func(h *Header) { h[HIDs] = 16 },
		"past end":   func(h *Header) { h[HOutOrder] = h[HBlockLen] },
		"huge n":     func(h *Header) { h[HN] = 1 << 30 },
		"huge nfeat": func(h *Header) { h[HNFeat] = 1 << 31 },
	} {
		h := base
		mutate(&h)
		if err := h.Check(h.Len()); !errors.Is(err, ErrBlock) {
			t.Errorf("%s: Check = %v, want ErrBlock", name, err)
		}
	}
}

func TestKindCodes(t *testing.T) {
	for _, k := range []Kind{KindRank, KindRules, KindDiversity} {
		if KindOf(k.Code()) != k {
			t.Errorf("KindOf(%q.Code()) = %q", k, KindOf(k.Code()))
		}
	}
	if Kind("sort").Code() != 0 || KindOf(0) != "" {
		t.Error("unknown kinds must map to zero values")
	}
}

func TestParseManifest(t *testing.T) {
	ok := `{"name":"rank/linear","kind":"rank","abi":1,"features":["a","b"],"needs":{"attributes":["brand"]},"params":{"w":1}}`
	m, err := ParseManifest([]byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "rank/linear" || m.Kind != KindRank || len(m.Features) != 2 || m.Needs.Attributes[0] != "brand" {
		t.Fatalf("parsed %+v", m)
	}
	bad := map[string]string{
		"unknown field": `{"name":"x","kind":"rank","abi":1,"extra":1}`,
		"bad name":      `{"name":"Rank Linear","kind":"rank","abi":1}`,
		"bad kind":      `{"name":"x","kind":"sort","abi":1}`,
		"no abi":        `{"name":"x","kind":"rank"}`,
		"dup feature":   `{"name":"x","kind":"rank","abi":1,"features":["a","a"]}`,
		"space feature": `{"name":"x","kind":"rank","abi":1,"features":["a b"]}`,
		"params array":  `{"name":"x","kind":"rank","abi":1,"params":[1]}`,
		"params null":   `{"name":"x","kind":"rank","abi":1,"params":null}`,
		"trailing":      `{"name":"x","kind":"rank","abi":1} {}`,
		"not json":      `name=x`,
	}
	for name, in := range bad {
		if _, err := ParseManifest([]byte(in)); !errors.Is(err, ErrManifest) {
			t.Errorf("%s: err = %v, want ErrManifest", name, err)
		}
	}
}

// minimal is the smallest valid wasm module: the header and nothing else.
var minimal = []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}

func TestCustomSectionRoundTrip(t *testing.T) {
	mod := append([]byte(nil), minimal...)
	// A type section with no types, to check that other sections survive.
	mod = append(mod, 0x01, 0x01, 0x00)
	if _, ok, err := CustomSection(mod, ManifestSection); ok || err != nil {
		t.Fatalf("found a section in a module without one: %v %v", ok, err)
	}
	one, err := SetCustomSection(mod, ManifestSection, []byte(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	two, err := SetCustomSection(one, ManifestSection, []byte(`{"b":2}`))
	if err != nil {
		t.Fatal(err)
	}
	got, ok, err := CustomSection(two, ManifestSection)
	if err != nil || !ok || string(got) != `{"b":2}` {
		t.Fatalf("CustomSection = %q %v %v", got, ok, err)
	}
	if len(two) != len(one) {
		t.Fatalf("replacing a section changed the length: %d vs %d", len(two), len(one))
	}
	if string(two[8:11]) != "\x01\x01\x00" {
		t.Fatal("the type section was not kept")
	}
	if _, _, err := CustomSection([]byte("hello"), "x"); !errors.Is(err, ErrNotWasm) {
		t.Fatalf("CustomSection(garbage) = %v", err)
	}
	if _, _, err := CustomSection(append(append([]byte(nil), minimal...), 0, 0x80), "x"); err == nil {
		t.Fatal("accepted a truncated section size")
	}
}

func FuzzHeaderCheck(f *testing.F) {
	h, _ := NewHeader(KindDiversity, 3, Shape{N: 4, NFeat: 1, Dim: 2, NCtx: 1, CtxBytes: 5, SIDs: true, SIDBytes: 8})
	b := make([]byte, h.Len())
	h.Put(b)
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		var h Header
		if h.Load(b) != nil {
			return
		}
		if h.Check(len(b)) != nil {
			return
		}
		// A header that passes Check must only point inside the block.
		n := int(h[HN])
		for _, w := range []int{HIDs, HScore, HOutScore, HOutPin, HOutOrder} {
			if int(h[w])+4*n > len(b) {
				t.Fatalf("word %d points past the block", w)
			}
		}
		if int(h[HFeat])+4*n*int(h[HNFeat]) > len(b) {
			t.Fatal("features past the block")
		}
	})
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"name":"rank/linear","kind":"rank","abi":1,"features":["a"],"params":{"w":1}}`))
	f.Add([]byte(`{"name":"x","kind":"rules","abi":1,"needs":{"attributes":["brand"],"ids":true}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			return
		}
		// Whatever parses must survive a round trip.
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseManifest(out); err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
	})
}

func FuzzCustomSection(f *testing.F) {
	f.Add(append(append([]byte(nil), minimal...), 0, 3, 1, 'x', 'y'), "x")
	f.Fuzz(func(t *testing.T, wasm []byte, name string) {
		if _, _, err := CustomSection(wasm, name); err != nil {
			return
		}
		out, err := SetCustomSection(wasm, name, []byte("payload"))
		if err != nil {
			t.Fatalf("Set failed on a module Get accepted: %v", err)
		}
		got, ok, err := CustomSection(out, name)
		if err != nil || !ok || string(got) != "payload" {
			t.Fatalf("after Set: %q %v %v", got, ok, err)
		}
		if !strings.HasPrefix(string(out), string(minimal)) {
			t.Fatal("lost the wasm header")
		}
	})
}
