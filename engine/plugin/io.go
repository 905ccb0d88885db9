package plugin

import (
	"fmt"
	"math"
	"slices"
	"unsafe"

	"github.com/podium-rank/podium/sdk/abi"
)

// Input is everything one stage call sees of one request, as plain Go values. The caller
// builds it from the plugin's needs (Plugin.Features, Plugin.Attributes, Plugin.Needs) and
// owns it; Call only reads it and keeps no reference after it returns.
type Input struct {
	// K is the number of results the request wants.
	K int
	// Context is the flat request context (user, session, device, hour...). Keys unique.
	Context []KV
	// IDs holds the dense candidate ids; its length is the number of candidates, n.
	IDs []uint32
	// StringIDs holds the candidates' string ids, len n. Only passed (and then required)
	// when Needs().IDs.
	StringIDs []string
	// Scores holds the current scores (from the previous stage, or retrieval), len n; empty
	// means zeros.
	Scores []float32
	// Features is the column-major feature matrix: feature j of candidate i at [j*n+i],
	// columns in Plugin.Features() order; len(Features())*n. Missing values are NaN.
	Features []float32
	// ItemEmb holds the candidates' embeddings row-major, n*dim values. Only passed (then
	// required, dim > 0) when Needs().ItemEmbedding.
	ItemEmb []float32
	// QueryEmb is the user or session embedding. Only passed when Needs().QueryEmbedding;
	// may be empty (an anonymous request).
	QueryEmb []float32
	// Attrs holds the candidates' attribute codes column-major: attribute a of candidate i
	// at [a*n+i], columns in Plugin.Attributes() order; -1 is missing. Codes are the ones
	// the Runtime's Resolver gives for the same strings.
	Attrs []int32
}

// KV is one entry of a request context: a key with a number or a string.
type KV struct {
	Key   string
	Str   string
	Num   float64
	IsNum bool
}

// Num returns a number context entry.
func Num(key string, v float64) KV { return KV{Key: key, Num: v, IsNum: true} }

// Str returns a string context entry.
func Str(key, v string) KV { return KV{Key: key, Str: v} }

// Output receives a stage call's results. Call resizes its slices (reusing their capacity,
// so a reused Output makes the call path allocation-free) and fills those of the plugin's
// kind; the others are set to length 0. See sdk/ABI.md §4 for their meaning.
type Output struct {
	// Scores: rank and rules. The new score of each candidate, len n, all finite.
	Scores []float32
	// Keep: rules. Whether each candidate stays in the list, len n.
	Keep []bool
	// Pin: rules. The position each candidate is pinned to, or -1, len n.
	Pin []int32
	// Order: diversity. The chosen order as candidate indexes, distinct, len <= n; the
	// unlisted candidates follow in their input order.
	Order []int32
}

// shape checks in against the plugin's needs and returns the block shape.
func (p *Plugin) shape(in *Input) (abi.Shape, error) {
	n := len(in.IDs)
	s := abi.Shape{N: n, NFeat: len(p.features), NAttr: len(p.attributes)}
	if n > abi.MaxCandidates {
		return s, fmt.Errorf("%w: %d candidates, the limit is %d", ErrInput, n, abi.MaxCandidates)
	}
	if in.K < 0 {
		return s, fmt.Errorf("%w: k is %d", ErrInput, in.K)
	}
	if len(in.Scores) != 0 && len(in.Scores) != n {
		return s, fmt.Errorf("%w: %d scores for %d candidates", ErrInput, len(in.Scores), n)
	}
	if len(in.Features) != s.NFeat*n {
		return s, fmt.Errorf("%w: %d feature values, want %d features x %d candidates", ErrInput, len(in.Features), s.NFeat, n)
	}
	if len(in.Attrs) != s.NAttr*n {
		return s, fmt.Errorf("%w: %d attribute codes, want %d attributes x %d candidates", ErrInput, len(in.Attrs), s.NAttr, n)
	}
	if p.needs.ItemEmbedding && n > 0 {
		if len(in.ItemEmb) == 0 || len(in.ItemEmb)%n != 0 {
			return s, fmt.Errorf("%w: %d item embedding values is not a multiple of %d candidates", ErrInput, len(in.ItemEmb), n)
		}
		s.Dim = len(in.ItemEmb) / n
	}
	if p.needs.QueryEmbedding {
		s.QDim = len(in.QueryEmb)
	}
	if p.needs.IDs {
		if len(in.StringIDs) != n {
			return s, fmt.Errorf("%w: %d string ids for %d candidates", ErrInput, len(in.StringIDs), n)
		}
		s.SIDs = true
		for _, id := range in.StringIDs {
			s.SIDBytes += len(id)
		}
	}
	s.NCtx = len(in.Context)
	for _, kv := range in.Context {
		s.CtxBytes += len(kv.Key) + len(kv.Str)
	}
	return s, nil
}

// encode writes the block described by h for in into b (len(b) >= h.Len()).
func (p *Plugin) encode(b []byte, h *abi.Header, in *Input) {
	h.Put(b)
	n := len(in.IDs)
	copy(b[h[abi.HIDs]:], u32Bytes(in.IDs))
	if len(in.Scores) == n {
		copy(b[h[abi.HScore]:], f32Bytes(in.Scores))
		copy(b[h[abi.HOutScore]:], f32Bytes(in.Scores))
	} else {
		clear(b[h[abi.HScore] : h[abi.HScore]+4*uint32(n)])
		clear(b[h[abi.HOutScore] : h[abi.HOutScore]+4*uint32(n)])
	}
	copy(b[h[abi.HFeat]:], f32Bytes(in.Features))
	if h[abi.HDim] > 0 {
		copy(b[h[abi.HEmb]:], f32Bytes(in.ItemEmb))
	}
	if h[abi.HQDim] > 0 {
		copy(b[h[abi.HQEmb]:], f32Bytes(in.QueryEmb))
	}
	copy(b[h[abi.HAttr]:], i32Bytes(in.Attrs))
	str := h[abi.HCtxStr]
	for i, kv := range in.Context {
		e := b[h[abi.HCtx]+uint32(i)*abi.ContextEntryBytes:]
		put32(e[abi.CtxKeyOff:], str)
		put32(e[abi.CtxKeyLen:], uint32(len(kv.Key)))
		str += uint32(copy(b[str:], kv.Key))
		put32(e[20:], 0)
		if kv.IsNum {
			put32(e[abi.CtxType:], abi.ContextNumber)
			put32(e[abi.CtxStrOff:], 0)
			put32(e[abi.CtxStrLen:], 0)
			*(*float64)(unsafe.Pointer(&e[abi.CtxNum])) = kv.Num
		} else {
			put32(e[abi.CtxType:], abi.ContextString)
			put32(e[abi.CtxStrOff:], str)
			put32(e[abi.CtxStrLen:], uint32(len(kv.Str)))
			*(*float64)(unsafe.Pointer(&e[abi.CtxNum])) = 0
			str += uint32(copy(b[str:], kv.Str))
		}
	}
	if h[abi.HFlags]&abi.FlagStringIDs != 0 {
		offs := b[h[abi.HSID]:]
		data := h[abi.HSIDData]
		at := uint32(0)
		for i, id := range in.StringIDs {
			put32(offs[4*i:], at)
			at += uint32(copy(b[data+at:], id))
		}
		put32(offs[4*n:], at)
	}
	if p.kind == abi.KindRules {
		keep := b[h[abi.HOutKeep] : h[abi.HOutKeep]+uint32(n)]
		for i := range keep {
			keep[i] = 1
		}
		pin := i32View(b, h[abi.HOutPin], n)
		for i := range pin {
			pin[i] = -1
		}
	}
}

// decode checks the guest's outputs in block b and copies them into out. It returns a
// description of the first violation, or "".
func (p *Plugin) decode(b []byte, h *abi.Header, out *Output, inst *instance) string {
	n := int(h[abi.HN])
	out.Scores, out.Keep, out.Pin, out.Order = out.Scores[:0], out.Keep[:0], out.Pin[:0], out.Order[:0]
	switch p.kind {
	case abi.KindRank, abi.KindRules:
		scores := f32View(b, h[abi.HOutScore], n)
		out.Scores = slices.Grow(out.Scores, n)[:n]
		for i, s := range scores {
			// An exponent of all ones is NaN or ±Inf.
			if math.Float32bits(s)&0x7f800000 == 0x7f800000 {
				return fmt.Sprintf("score of candidate %d is %v", i, s)
			}
			out.Scores[i] = s
		}
		if p.kind == abi.KindRank {
			return ""
		}
		keep := b[h[abi.HOutKeep] : int(h[abi.HOutKeep])+n]
		for i, k := range keep {
			if k > 1 {
				return fmt.Sprintf("keep of candidate %d is %d, want 0 or 1", i, k)
			}
			out.Keep = append(out.Keep, k == 1)
		}
		pins := i32View(b, h[abi.HOutPin], n)
		for i, pin := range pins {
			if pin < -1 || int(pin) >= n {
				return fmt.Sprintf("pin of candidate %d is %d, want -1 or a position in [0, %d)", i, pin, n)
			}
		}
		out.Pin = append(out.Pin, pins...)
	case abi.KindDiversity:
		m := get32(b[4*abi.HOutOrderLen:])
		if int64(m) > int64(n) {
			return fmt.Sprintf("order has %d entries for %d candidates", m, n)
		}
		order := i32View(b, h[abi.HOutOrder], int(m))
		gen := inst.nextGen(n)
		for j, idx := range order {
			if idx < 0 || int(idx) >= n {
				return fmt.Sprintf("order[%d] is %d, out of range [0, %d)", j, idx, n)
			}
			if inst.seen[idx] == gen {
				return fmt.Sprintf("order[%d] repeats candidate %d", j, idx)
			}
			inst.seen[idx] = gen
		}
		out.Order = append(out.Order, order...)
	}
	return ""
}

func put32(b []byte, v uint32) { *(*uint32)(unsafe.Pointer(&b[0])) = v }
func get32(b []byte) uint32    { return *(*uint32)(unsafe.Pointer(&b[0])) }

func f32Bytes(f []float32) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(f))), 4*len(f))
}

func u32Bytes(f []uint32) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(f))), 4*len(f))
}

func i32Bytes(f []int32) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(f))), 4*len(f))
}

// f32View returns n float32 at byte offset off of b, which must be 4-aligned in memory.
func f32View(b []byte, off uint32, n int) []float32 {
	if n == 0 {
		return nil
	}
	_ = b[int(off)+4*n-1]
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[off])), n)
}

func i32View(b []byte, off uint32, n int) []int32 {
	if n == 0 {
		return nil
	}
	_ = b[int(off)+4*n-1]
	return unsafe.Slice((*int32)(unsafe.Pointer(&b[off])), n)
}
