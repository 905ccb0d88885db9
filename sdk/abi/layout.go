package abi

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Shape gives the size of every section of a request block.
type Shape struct {
	N        int  // candidates
	NFeat    int  // feature columns
	Dim      int  // item embedding dimension, 0 if not passed
	QDim     int  // query embedding dimension, 0 if not passed
	NAttr    int  // attribute columns
	NCtx     int  // context entries
	CtxBytes int  // bytes of context keys and string values
	SIDs     bool // string ids passed
	SIDBytes int  // bytes of string ids
}

// Header is the 32-word header of a request block (see ABI.md §3). The offsets in it are in
// bytes from the start of the block.
type Header [HeaderWords]uint32

// ErrBlock reports a block whose header does not describe a well-formed layout.
var ErrBlock = errors.New("abi: malformed request block")

// maxBlock bounds a block so that every offset fits an int32 guest pointer.
const maxBlock = 1<<31 - 1

// NewHeader lays out a block of the given kind and shape: it returns the header with every
// offset filled in, and the block length in the block_len word. It fails if the shape is
// negative or the block would not fit a 32-bit address space.
func NewHeader(kind Kind, k int, s Shape) (Header, error) {
	var h Header
	if s.N < 0 || s.NFeat < 0 || s.Dim < 0 || s.QDim < 0 || s.NAttr < 0 || s.NCtx < 0 ||
		s.CtxBytes < 0 || s.SIDBytes < 0 || k < 0 {
		return h, fmt.Errorf("%w: negative size", ErrBlock)
	}
	if s.N > MaxCandidates {
		return h, fmt.Errorf("%w: %d candidates, the limit is %d", ErrBlock, s.N, MaxCandidates)
	}
	n := int64(s.N)
	off := int64(HeaderBytes)
	place := func(word int, size int64) {
		h[word] = uint32(off)
		off += (size + Align - 1) &^ (Align - 1)
		if off > maxBlock {
			off = maxBlock + 1 // sticky overflow, checked below
		}
	}
	place(HIDs, 4*n)
	place(HScore, 4*n)
	place(HFeat, 4*n*int64(s.NFeat))
	place(HEmb, 4*n*int64(s.Dim))
	place(HQEmb, 4*int64(s.QDim))
	place(HAttr, 4*n*int64(s.NAttr))
	place(HCtx, ContextEntryBytes*int64(s.NCtx))
	place(HCtxStr, int64(s.CtxBytes))
	sidWords := int64(0)
	if s.SIDs {
		sidWords = n + 1
		h[HFlags] |= FlagStringIDs
	}
	place(HSID, 4*sidWords)
	place(HSIDData, int64(s.SIDBytes))
	place(HOutScore, 4*n)
	place(HOutKeep, n)
	place(HOutPin, 4*n)
	place(HOutOrder, 4*n)
	if off > maxBlock {
		return h, fmt.Errorf("%w: block larger than 2 GiB", ErrBlock)
	}
	h[HMagic] = Magic
	h[HABI] = Version
	h[HKind] = kind.Code()
	h[HN] = uint32(s.N)
	h[HK] = uint32(min(k, maxBlock))
	h[HNFeat] = uint32(s.NFeat)
	h[HDim] = uint32(s.Dim)
	h[HQDim] = uint32(s.QDim)
	h[HNAttr] = uint32(s.NAttr)
	h[HNCtx] = uint32(s.NCtx)
	h[HBlockLen] = uint32(off)
	return h, nil
}

// Len returns the block length recorded in the header.
func (h *Header) Len() int { return int(h[HBlockLen]) }

// Put writes the header into the first HeaderBytes of b. It panics if b is shorter.
func (h *Header) Put(b []byte) {
	_ = b[HeaderBytes-1]
	for i, w := range h {
		binary.LittleEndian.PutUint32(b[4*i:], w)
	}
}

// Load reads a header from the first HeaderBytes of b. It returns ErrBlock if b is shorter.
func (h *Header) Load(b []byte) error {
	if len(b) < HeaderBytes {
		return fmt.Errorf("%w: %d bytes, shorter than the header", ErrBlock, len(b))
	}
	for i := range h {
		h[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return nil
}

// Check verifies that the header describes a well-formed block of blockLen bytes: the magic
// and ABI words, the kind, and that every section is aligned, inside the block and clear of
// the header. A guest should check the header before trusting any offset in it.
func (h *Header) Check(blockLen int) error {
	if h[HMagic] != Magic {
		return fmt.Errorf("%w: bad magic %#x", ErrBlock, h[HMagic])
	}
	if h[HABI] != Version {
		return fmt.Errorf("%w: block is ABI version %d, want %d", ErrBlock, h[HABI], Version)
	}
	if KindOf(h[HKind]) == "" {
		return fmt.Errorf("%w: unknown kind %d", ErrBlock, h[HKind])
	}
	if int64(h[HBlockLen]) > int64(blockLen) || h[HBlockLen] < HeaderBytes {
		return fmt.Errorf("%w: block_len %d, have %d bytes", ErrBlock, h[HBlockLen], blockLen)
	}
	if h[HN] > MaxCandidates {
		return fmt.Errorf("%w: %d candidates", ErrBlock, h[HN])
	}
	n := int64(h[HN])
	sid := int64(0)
	if h[HFlags]&FlagStringIDs != 0 {
		sid = n + 1
	}
	end := int64(h[HBlockLen])
	sections := [...]struct {
		word int
		size int64
	}{
		{HIDs, 4 * n},
		{HScore, 4 * n},
		{HFeat, 4 * n * int64(h[HNFeat])},
		{HEmb, 4 * n * int64(h[HDim])},
		{HQEmb, 4 * int64(h[HQDim])},
		{HAttr, 4 * n * int64(h[HNAttr])},
		{HCtx, ContextEntryBytes * int64(h[HNCtx])},
		{HCtxStr, 0},
		{HSID, 4 * sid},
		{HSIDData, 0},
		{HOutScore, 4 * n},
		{HOutKeep, n},
		{HOutPin, 4 * n},
		{HOutOrder, 4 * n},
	}
	for _, s := range sections {
		off := int64(h[s.word])
		if off%Align != 0 || off < HeaderBytes || off+s.size > end {
			return fmt.Errorf("%w: section at word %d (offset %d, %d bytes) outside the %d-byte block",
				ErrBlock, s.word, off, s.size, end)
		}
	}
	return nil
}
