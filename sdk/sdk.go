// Package sdk is the Go guest library for Podium plugins: it hides the ABI of sdk/ABI.md
// behind typed Go, for the standard toolchain (GOOS=wasip1 GOARCH=wasm -buildmode=c-shared).
//
// A plugin is a main package that registers one stage function in init:
//
//	func init() {
//		sdk.Init(func(p *sdk.Params) error { return p.Decode(&cfg) })
//		sdk.Rank(func(req *sdk.Request, c *sdk.Candidates, f *sdk.Features, scores []float32) error {
//			sdk.WSum(weights, f.Matrix(), scores) // a host kernel: native speed
//			return nil
//		})
//	}
//	func main() {}
//
// Everything a stage function receives (Request, Candidates, Features and the output
// slices) is a view of the request block in guest memory, valid only during the call; the
// SDK allocates nothing per call, and stage functions should not either (a Go guest that
// allocates per call grows its memory, which never shrinks). Built for another GOOS, the
// package compiles with pure-Go kernels so that plugin code can be unit-tested natively.
// A guest runs one call at a time; nothing here is goroutine-safe, nor needs to be.
package sdk

import (
	"encoding/json"
	"errors"
	"fmt"
	"unsafe"

	"github.com/podium-rank/podium/sdk/abi"
)

// Params are a plugin's params: the manifest defaults merged with the stage's, given once
// at init.
type Params struct {
	// Raw is the params JSON object.
	Raw []byte
	// Features names the feature columns, in Features.Col order.
	Features []string
	// Attributes names the attribute columns, in Candidates.Attr order.
	Attributes []string
}

// Decode unmarshals the params into v with encoding/json.
func (p *Params) Decode(v any) error { return json.Unmarshal(p.Raw, v) }

// Feature returns the column of the named feature, or -1.
func (p *Params) Feature(name string) int {
	for i, f := range p.Features {
		if f == name {
			return i
		}
	}
	return -1
}

// Attribute returns the column of the named attribute, or -1.
func (p *Params) Attribute(name string) int {
	for i, a := range p.Attributes {
		if a == name {
			return i
		}
	}
	return -1
}

// AttrCode returns the code the host uses for value of attribute attr (for example
// "brand", "acme"), to compare with Candidates.Attr.
func (p *Params) AttrCode(attr, value string) (int32, bool) {
	c := lookup(attr, value)
	return c, c >= 0
}

// ItemID returns the dense id of the item with the given string id, to compare with
// Candidates.IDs.
func (p *Params) ItemID(id string) (uint32, bool) {
	c := lookup(abi.LookupIDSpace, id)
	return uint32(c), c >= 0
}

// Request is the request-level input of a call.
type Request struct {
	// K is the number of results the request wants.
	K int

	block []byte
	h     *abi.Header
}

// entry returns the context entry with the given key, or nil.
func (r *Request) entry(key string) []byte {
	n := int(r.h[abi.HNCtx])
	base := int(r.h[abi.HCtx])
	for i := range n {
		e := r.block[base+i*abi.ContextEntryBytes : base+(i+1)*abi.ContextEntryBytes]
		if r.bytes(le32(e[abi.CtxKeyOff:]), le32(e[abi.CtxKeyLen:])) == key {
			return e
		}
	}
	return nil
}

// bytes returns block[off:off+n] as a string without copying ("" if out of range).
func (r *Request) bytes(off, n uint32) string {
	if uint64(off)+uint64(n) > uint64(len(r.block)) || n == 0 {
		return ""
	}
	return unsafe.String(&r.block[off], n)
}

// Str returns the string value of a context key. The string is valid during the call only.
func (r *Request) Str(key string) (string, bool) {
	e := r.entry(key)
	if e == nil || le32(e[abi.CtxType:]) != abi.ContextString {
		return "", false
	}
	return r.bytes(le32(e[abi.CtxStrOff:]), le32(e[abi.CtxStrLen:])), true
}

// Num returns the number value of a context key.
func (r *Request) Num(key string) (float64, bool) {
	e := r.entry(key)
	if e == nil || le32(e[abi.CtxType:]) != abi.ContextNumber {
		return 0, false
	}
	return *(*float64)(unsafe.Pointer(&e[abi.CtxNum])), true
}

// Query returns the query (user or session) embedding, or nil.
func (r *Request) Query() []float32 {
	return f32s(r.block, r.h[abi.HQEmb], int(r.h[abi.HQDim]))
}

// Candidates are the items being ranked, indexed 0..N-1.
type Candidates struct {
	// N is the number of candidates.
	N int
	// IDs holds the dense ids.
	IDs []uint32
	// Scores holds the scores from the previous stage (read-only).
	Scores []float32
	// Dim is the item embedding dimension, 0 if the plugin did not ask for embeddings.
	Dim int

	emb   []float32
	attrs []int32
	sid   []uint32
	block []byte
	sdata uint32
}

// Emb returns the embedding of candidate i (nil without embeddings).
func (c *Candidates) Emb(i int) []float32 {
	if c.Dim == 0 {
		return nil
	}
	return c.emb[i*c.Dim : (i+1)*c.Dim]
}

// Embeddings returns all embeddings, row-major (N*Dim values), for the kernels.
func (c *Candidates) Embeddings() []float32 { return c.emb }

// Attr returns the code of attribute column a for candidate i; -1 is missing.
func (c *Candidates) Attr(a, i int) int32 { return c.attrs[a*c.N+i] }

// AttrCol returns attribute column a for all candidates.
func (c *Candidates) AttrCol(a int) []int32 { return c.attrs[a*c.N : (a+1)*c.N] }

// StringID returns the string id of candidate i ("" unless the manifest asks for ids). It
// is valid during the call only.
func (c *Candidates) StringID(i int) string {
	if len(c.sid) == 0 {
		return ""
	}
	a, b := c.sid[i], c.sid[i+1]
	if b < a || uint64(c.sdata)+uint64(b) > uint64(len(c.block)) || a == b {
		return ""
	}
	return unsafe.String(&c.block[c.sdata+a], b-a)
}

// Features is the column-major feature matrix.
type Features struct {
	n, cols int
	m       []float32
}

// Len returns the number of feature columns.
func (f *Features) Len() int { return f.cols }

// Col returns feature column j: one value per candidate. Missing values are NaN.
func (f *Features) Col(j int) []float32 { return f.m[j*f.n : (j+1)*f.n] }

// Matrix returns the whole matrix, column-major (Len()*N values), for the kernels.
func (f *Features) Matrix() []float32 { return f.m }

// RulesOutput is what a rules stage writes; the host prefills it with the input scores,
// keep true and pin -1.
type RulesOutput struct {
	Scores []float32
	Keep   []bool
	Pin    []int32
}

// Stage functions, one per kind.
type (
	RankFunc      func(req *Request, c *Candidates, f *Features, scores []float32) error
	RulesFunc     func(req *Request, c *Candidates, f *Features, out *RulesOutput) error
	DiversityFunc func(req *Request, c *Candidates, f *Features, order []int32) (int, error)
)

// The registered plugin.
var (
	initFn      func(*Params) error
	rankFn      RankFunc
	rulesFn     RulesFunc
	diversityFn DiversityFunc
	params      Params
)

// Init registers the function run once per instance with the params.
func Init(f func(p *Params) error) { initFn = f }

// Rank registers a rank stage: write one score per candidate into scores (len N,
// prefilled with the input scores). Scores must be finite.
func Rank(f RankFunc) { rankFn = f }

// Rules registers a rules stage (see RulesOutput and sdk/ABI.md §4).
func Rules(f RulesFunc) { rulesFn = f }

// Diversity registers a diversity stage: write the chosen order (candidate indexes,
// distinct) into order (len N) and return how many entries it holds.
func Diversity(f DiversityFunc) { diversityFn = f }

// Log sends a debug message to the host (bounded: see sdk/ABI.md §6).
func Log(level int, msg string) {
	if len(msg) > 0 {
		hostLog(int32(level), unsafe.Pointer(unsafe.StringData(msg)), int32(len(msg)))
	}
}

// Logf formats and logs a message. It allocates: keep it off the hot path.
func Logf(level int, format string, args ...any) { Log(level, fmt.Sprintf(format, args...)) }

// Dot sets out[i] to the dot product of q and row i of rows (row-major, len(out) rows of
// len(q)), on the host at native speed.
func Dot(q, rows, out []float32) {
	if len(out) == 0 || len(q) == 0 {
		clear(out)
		return
	}
	_ = rows[len(out)*len(q)-1]
	hostDot(unsafe.Pointer(&q[0]), unsafe.Pointer(&rows[0]), int32(len(out)), int32(len(q)), unsafe.Pointer(&out[0]))
}

// Cosine is Dot with cosine similarity (0 where a norm is 0).
func Cosine(q, rows, out []float32) {
	if len(out) == 0 || len(q) == 0 {
		clear(out)
		return
	}
	_ = rows[len(out)*len(q)-1]
	hostCosine(unsafe.Pointer(&q[0]), unsafe.Pointer(&rows[0]), int32(len(out)), int32(len(q)), unsafe.Pointer(&out[0]))
}

// WSum sets out[i] to the sum over j of w[j]*cols[j*len(out)+i]: a weighted sum of the
// columns of a column-major matrix such as Features.Matrix(), on the host.
func WSum(w, cols, out []float32) {
	if len(out) == 0 {
		return
	}
	if len(w) == 0 {
		clear(out)
		return
	}
	_ = cols[len(w)*len(out)-1]
	hostWSum(unsafe.Pointer(&w[0]), unsafe.Pointer(&cols[0]), int32(len(w)), int32(len(out)), unsafe.Pointer(&out[0]))
}

// Sigmoid replaces each x[i] by 1/(1+exp(-x[i])), on the host.
func Sigmoid(x []float32) {
	if len(x) > 0 {
		hostSigmoid(unsafe.Pointer(&x[0]), int32(len(x)))
	}
}

func lookup(space, value string) int32 {
	if len(space) == 0 || len(value) == 0 {
		return -1
	}
	return hostLookup(unsafe.Pointer(unsafe.StringData(space)), int32(len(space)),
		unsafe.Pointer(unsafe.StringData(value)), int32(len(value)))
}

// The guest buffer (podium_buffer) and the views handed to stage functions, reused.
var (
	buffer  []byte
	hdr     abi.Header
	req     Request
	cands   Candidates
	feats   Features
	rulesIO RulesOutput
)

// errNoStage is returned when a plugin registered no stage function of its kind.
var errNoStage = errors.New("sdk: no stage function registered for this kind")

// bufferFor implements podium_buffer: it returns a 16-byte aligned region of at least
// size bytes, reusing the previous one when it is large enough.
func bufferFor(size int32) []byte {
	if size < 0 {
		return nil
	}
	if int(size) <= len(buffer) {
		return buffer
	}
	raw := make([]byte, int(size)+abi.Align)
	off := int(-uintptr(unsafe.Pointer(&raw[0])) & (abi.Align - 1))
	buffer = raw[off : off+int(size)]
	return buffer
}

// blockAt returns the buffer bytes [ptr, ptr+n) if they lie in the buffer.
func blockAt(ptr uintptr, n int32) []byte {
	if len(buffer) == 0 || n < 0 {
		return nil
	}
	base := uintptr(unsafe.Pointer(&buffer[0]))
	if ptr < base || ptr-base+uintptr(n) > uintptr(len(buffer)) {
		return nil
	}
	off := int(ptr - base)
	return buffer[off : off+int(n)]
}

// initialize implements podium_init.
func initialize(raw []byte) int32 {
	params = Params{Raw: append([]byte(nil), raw...)}
	var lists struct {
		Features   []string `json:"features"`
		Attributes []string `json:"attributes"`
	}
	if err := json.Unmarshal(params.Raw, &lists); err != nil {
		Log(abi.LogError, "sdk: params: "+err.Error())
		return 1
	}
	params.Features, params.Attributes = lists.Features, lists.Attributes
	if initFn != nil {
		if err := initFn(&params); err != nil {
			Log(abi.LogError, "init: "+err.Error())
			return 2
		}
	}
	return 0
}

// handle implements podium_call on a request block.
func handle(b []byte) int32 {
	if err := hdr.Load(b); err != nil {
		return 10
	}
	if err := hdr.Check(len(b)); err != nil {
		Log(abi.LogError, err.Error())
		return 11
	}
	h := &hdr
	n := int(h[abi.HN])
	req = Request{K: int(h[abi.HK]), block: b, h: h}
	cands = Candidates{
		N:      n,
		IDs:    u32s(b, h[abi.HIDs], n),
		Scores: f32s(b, h[abi.HScore], n),
		Dim:    int(h[abi.HDim]),
		emb:    f32s(b, h[abi.HEmb], n*int(h[abi.HDim])),
		attrs:  i32s(b, h[abi.HAttr], n*int(h[abi.HNAttr])),
		block:  b,
		sdata:  h[abi.HSIDData],
	}
	if h[abi.HFlags]&abi.FlagStringIDs != 0 {
		cands.sid = u32s(b, h[abi.HSID], n+1)
	}
	feats = Features{n: n, cols: int(h[abi.HNFeat]), m: f32s(b, h[abi.HFeat], n*int(h[abi.HNFeat]))}
	var err error
	switch abi.KindOf(h[abi.HKind]) {
	case abi.KindRank:
		if rankFn == nil {
			err = errNoStage
			break
		}
		err = rankFn(&req, &cands, &feats, f32s(b, h[abi.HOutScore], n))
	case abi.KindRules:
		if rulesFn == nil {
			err = errNoStage
			break
		}
		rulesIO = RulesOutput{
			Scores: f32s(b, h[abi.HOutScore], n),
			Keep:   unsafe.Slice((*bool)(unsafe.Pointer(unsafe.SliceData(b[h[abi.HOutKeep]:]))), n),
			Pin:    i32s(b, h[abi.HOutPin], n),
		}
		err = rulesFn(&req, &cands, &feats, &rulesIO)
	case abi.KindDiversity:
		if diversityFn == nil {
			err = errNoStage
			break
		}
		var m int
		m, err = diversityFn(&req, &cands, &feats, i32s(b, h[abi.HOutOrder], n))
		if m < 0 || m > n {
			m = n + 1 // the host reports it as a bad output
		}
		putLE32(b[4*abi.HOutOrderLen:], uint32(m))
	}
	if err != nil {
		Log(abi.LogError, err.Error())
		return 1
	}
	return 0
}

func le32(b []byte) uint32 {
	_ = b[3]
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func putLE32(b []byte, v uint32) {
	_ = b[3]
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

func f32s(b []byte, off uint32, n int) []float32 {
	if n == 0 {
		return nil
	}
	_ = b[int(off)+4*n-1]
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[off])), n)
}

func u32s(b []byte, off uint32, n int) []uint32 {
	if n == 0 {
		return nil
	}
	_ = b[int(off)+4*n-1]
	return unsafe.Slice((*uint32)(unsafe.Pointer(&b[off])), n)
}

func i32s(b []byte, off uint32, n int) []int32 {
	if n == 0 {
		return nil
	}
	_ = b[int(off)+4*n-1]
	return unsafe.Slice((*int32)(unsafe.Pointer(&b[off])), n)
}
