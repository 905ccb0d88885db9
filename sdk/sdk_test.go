package sdk

import (
	"encoding/binary"
	"math"
	"testing"
	"unsafe"

	"github.com/podium-rank/podium/sdk/abi"
)

// block builds a request block natively, as the host would.
func block(t testing.TB, kind abi.Kind, n, nfeat, dim int, sids []string) []byte {
	t.Helper()
	sidBytes := 0
	for _, s := range sids {
		sidBytes += len(s)
	}
	h, err := abi.NewHeader(kind, 3, abi.Shape{N: n, NFeat: nfeat, Dim: dim, QDim: dim, NCtx: 2,
		CtxBytes: len("user") + len("u1") + len("hour"), SIDs: sids != nil, SIDBytes: sidBytes})
	if err != nil {
		t.Fatal(err)
	}
	b := bufferFor(int32(h.Len()))[:h.Len()]
	clear(b)
	h.Put(b)
	le := binary.LittleEndian
	for i := range n {
		le.PutUint32(b[int(h[abi.HIDs])+4*i:], uint32(10+i))
		le.PutUint32(b[int(h[abi.HScore])+4*i:], math.Float32bits(float32(i)))
		le.PutUint32(b[int(h[abi.HOutScore])+4*i:], math.Float32bits(float32(i)))
		for j := range nfeat {
			le.PutUint32(b[int(h[abi.HFeat])+4*(j*n+i):], math.Float32bits(float32(100*j+i)))
		}
		for d := range dim {
			le.PutUint32(b[int(h[abi.HEmb])+4*(i*dim+d):], math.Float32bits(float32(d)))
		}
		b[int(h[abi.HOutKeep])+i] = 1
		le.PutUint32(b[int(h[abi.HOutPin])+4*i:], 0xffffffff)
	}
	for d := range dim {
		le.PutUint32(b[int(h[abi.HQEmb])+4*d:], math.Float32bits(1))
	}
	str := h[abi.HCtxStr]
	e := b[h[abi.HCtx]:]
	le.PutUint32(e[abi.CtxKeyOff:], str)
	le.PutUint32(e[abi.CtxKeyLen:], 4)
	le.PutUint32(e[abi.CtxType:], abi.ContextString)
	copy(b[str:], "useru1hour")
	le.PutUint32(e[abi.CtxStrOff:], str+4)
	le.PutUint32(e[abi.CtxStrLen:], 2)
	e = e[abi.ContextEntryBytes:]
	le.PutUint32(e[abi.CtxKeyOff:], str+6)
	le.PutUint32(e[abi.CtxKeyLen:], 4)
	le.PutUint32(e[abi.CtxType:], abi.ContextNumber)
	le.PutUint64(e[abi.CtxNum:], math.Float64bits(13))
	if sids != nil {
		at := uint32(0)
		for i, s := range sids {
			le.PutUint32(b[int(h[abi.HSID])+4*i:], at)
			at += uint32(copy(b[h[abi.HSIDData]+at:], s))
		}
		le.PutUint32(b[int(h[abi.HSID])+4*n:], at)
	}
	return b
}

func TestHandleRank(t *testing.T) {
	var seen struct {
		user  string
		hour  float64
		k, n  int
		sid   string
		emb   []float32
		query []float32
		col1  []float32
	}
	Rank(func(req *Request, c *Candidates, f *Features, scores []float32) error {
		seen.user, _ = req.Str("user")
		seen.hour, _ = req.Num("hour")
		if _, ok := req.Num("user"); ok {
			t.Error("Num found a string entry")
		}
		seen.k, seen.n = req.K, c.N
		seen.sid = c.StringID(2)
		seen.emb = append([]float32(nil), c.Emb(1)...)
		seen.query = append([]float32(nil), req.Query()...)
		seen.col1 = append([]float32(nil), f.Col(1)...)
		Dot(req.Query(), c.Embeddings(), scores)
		return nil
	})
	defer Rank(nil)
	b := block(t, abi.KindRank, 4, 2, 3, []string{"a", "bb", "ccc", "dddd"})
	if status := handle(b); status != 0 {
		t.Fatalf("handle = %d", status)
	}
	if seen.user != "u1" || seen.hour != 13 || seen.k != 3 || seen.n != 4 || seen.sid != "ccc" {
		t.Fatalf("saw %+v", seen)
	}
	if len(seen.emb) != 3 || seen.emb[2] != 2 || len(seen.query) != 3 || seen.col1[3] != 103 {
		t.Fatalf("saw %+v", seen)
	}
	var h abi.Header
	h.Load(b)
	out := f32s(b, h[abi.HOutScore], 4)
	if out[0] != 3 { // (1,1,1)·(0,1,2)
		t.Fatalf("scores %v", out)
	}
}

func TestHandleRulesAndDiversity(t *testing.T) {
	Rules(func(req *Request, c *Candidates, f *Features, out *RulesOutput) error {
		out.Keep[1] = false
		out.Pin[2] = 0
		out.Scores[3] = 42
		return nil
	})
	defer Rules(nil)
	b := block(t, abi.KindRules, 4, 0, 0, nil)
	if status := handle(b); status != 0 {
		t.Fatalf("handle = %d", status)
	}
	var h abi.Header
	h.Load(b)
	keep := b[h[abi.HOutKeep] : h[abi.HOutKeep]+4]
	if keep[0] != 1 || keep[1] != 0 || i32s(b, h[abi.HOutPin], 4)[2] != 0 || f32s(b, h[abi.HOutScore], 4)[3] != 42 {
		t.Fatalf("rules outputs: keep %v", keep)
	}
	Diversity(func(req *Request, c *Candidates, f *Features, order []int32) (int, error) {
		order[0], order[1] = 3, 1
		return 2, nil
	})
	defer Diversity(nil)
	b = block(t, abi.KindDiversity, 4, 0, 0, nil)
	if status := handle(b); status != 0 {
		t.Fatalf("handle = %d", status)
	}
	h.Load(b)
	if m := le32(b[4*abi.HOutOrderLen:]); m != 2 || i32s(b, h[abi.HOutOrder], 2)[0] != 3 {
		t.Fatalf("order len %d", m)
	}
	// No stage function for the kind: an error status, not a crash.
	if status := handle(block(t, abi.KindRank, 2, 0, 0, nil)); status == 0 {
		t.Fatal("handle succeeded without a rank function")
	}
}

func TestInitialize(t *testing.T) {
	var got struct{ W float64 }
	Init(func(p *Params) error {
		if p.Feature("b") != 1 || p.Attribute("brand") != 0 || p.Feature("zz") != -1 {
			t.Errorf("params lists: %+v", p)
		}
		return p.Decode(&got)
	})
	defer Init(nil)
	if status := initialize([]byte(`{"W":2.5,"features":["a","b"],"attributes":["brand"]}`)); status != 0 || got.W != 2.5 {
		t.Fatalf("initialize = %d, %+v", status, got)
	}
	if status := initialize([]byte(`not json`)); status == 0 {
		t.Fatal("initialize accepted bad JSON")
	}
}

func TestBuffer(t *testing.T) {
	b := bufferFor(1 << 20)
	if len(b) != 1<<20 || uintptr(unsafe.Pointer(&b[0]))%abi.Align != 0 {
		t.Fatalf("buffer of %d at %p", len(b), &b[0])
	}
	if c := bufferFor(50); &c[0] != &b[0] {
		t.Fatal("a smaller request did not reuse the buffer")
	}
	if blockAt(uintptr(unsafe.Pointer(&b[0]))+10, 1<<20) != nil {
		t.Fatal("blockAt accepted a range past the buffer")
	}
}

// FuzzHandle feeds arbitrary blocks to the guest-side decoder: it must never panic.
func FuzzHandle(f *testing.F) {
	f.Add(block(f, abi.KindRank, 3, 2, 2, []string{"x", "yy", "z"}))
	f.Add(block(f, abi.KindDiversity, 2, 0, 0, nil))
	Rank(func(req *Request, c *Candidates, f *Features, scores []float32) error {
		req.Str("user")
		req.Num("hour")
		for i := range c.N {
			c.StringID(i)
			c.Emb(i)
		}
		for j := range f.Len() {
			f.Col(j)
		}
		return nil
	})
	Diversity(func(req *Request, c *Candidates, f *Features, order []int32) (int, error) { return len(order), nil })
	f.Fuzz(func(t *testing.T, b []byte) {
		buf := bufferFor(int32(len(b)))[:len(b)]
		copy(buf, b)
		handle(buf)
	})
}
