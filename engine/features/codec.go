package features

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// Encoded values start with one header byte naming both the kind and the version of the
// layout, so a reader of one kind rejects another kind's bytes, and a future layout can be
// told apart from this one. All numbers are little-endian.
const (
	// hdrUserRow1: uvarint n, n × (uvarint column id, float32 value),
	// uvarint m, m × float32 embedding.
	hdrUserRow1 byte = 0x01
	// hdrFloat32s1: float32 values to the end.
	hdrFloat32s1 byte = 0x02
	// hdrUint64s1: uint64 values to the end.
	hdrUint64s1 byte = 0x03
)

// appendUserRow appends the encoding of a user row to dst. cols and vals must have the
// same length and every column must be in [0, MaxColumns).
func appendUserRow(dst []byte, cols []int, vals []float32, emb []float32) []byte {
	dst = slices.Grow(dst, 1+2*binary.MaxVarintLen16+len(cols)*6+len(emb)*4)
	dst = append(dst, hdrUserRow1)
	dst = binary.AppendUvarint(dst, uint64(len(cols)))
	for k, c := range cols {
		dst = binary.AppendUvarint(dst, uint64(c))
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(vals[k]))
	}
	dst = binary.AppendUvarint(dst, uint64(len(emb)))
	for _, v := range emb {
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(v))
	}
	return dst
}

// userRowSize returns the length of appendUserRow's output.
func userRowSize(cols []int, emb []float32) int {
	n := 1 + uvarintLen(uint64(len(cols))) + uvarintLen(uint64(len(emb))) + 4*len(cols) + 4*len(emb)
	for _, c := range cols {
		n += uvarintLen(uint64(c))
	}
	return n
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// decodeUserRow decodes src into r, reusing r's slices. On error r is left empty. It never
// panics and never allocates more than the input length justifies.
func decodeUserRow(src []byte, r *UserRow) error {
	r.Cols, r.Vals, r.Emb = r.Cols[:0], r.Vals[:0], r.Emb[:0]
	if err := decodeUserRowInto(src, r); err != nil {
		r.Cols, r.Vals, r.Emb = r.Cols[:0], r.Vals[:0], r.Emb[:0]
		return err
	}
	return nil
}

func decodeUserRowInto(src []byte, r *UserRow) error {
	if len(src) == 0 || src[0] != hdrUserRow1 {
		return fmt.Errorf("%w: user row header", ErrCorrupt)
	}
	p := 1
	n, k := binary.Uvarint(src[p:])
	if k <= 0 || n > uint64(len(src)-p-k)/5 { // a feature takes at least 5 bytes
		return fmt.Errorf("%w: user row feature count", ErrCorrupt)
	}
	p += k
	r.Cols = slices.Grow(r.Cols, int(n))
	r.Vals = slices.Grow(r.Vals, int(n))
	var seen colSet
	for i := uint64(0); i < n; i++ {
		c, k := binary.Uvarint(src[p:])
		if k <= 0 || c >= MaxColumns || len(src)-p-k < 4 || !seen.add(int(c)) {
			return fmt.Errorf("%w: user row feature %d", ErrCorrupt, i)
		}
		p += k
		r.Cols = append(r.Cols, int(c))
		r.Vals = append(r.Vals, math.Float32frombits(binary.LittleEndian.Uint32(src[p:])))
		p += 4
	}
	m, k := binary.Uvarint(src[p:])
	if k <= 0 || m != uint64(len(src)-p-k)/4 || (len(src)-p-k)%4 != 0 {
		return fmt.Errorf("%w: user row embedding", ErrCorrupt)
	}
	p += k
	r.Emb = decodeFloat32s(src[p:], r.Emb)
	return nil
}

// colSet is a set of column ids in [0, MaxColumns), 512 bytes, meant for the stack.
type colSet [MaxColumns / 64]uint64

// add inserts c and reports whether it was absent.
func (s *colSet) add(c int) bool {
	w, bit := c>>6, uint64(1)<<(c&63)
	if s[w]&bit != 0 {
		return false
	}
	s[w] |= bit
	return true
}

// appendFloat32s appends the header and values of a float32 vector to dst.
func appendFloat32s(dst []byte, v []float32) []byte {
	dst = slices.Grow(dst, 1+4*len(v))
	dst = append(dst, hdrFloat32s1)
	for _, x := range v {
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(x))
	}
	return dst
}

// decodeFloat32Value decodes a value written by appendFloat32s, appending to dst[:0].
func decodeFloat32Value(src []byte, dst []float32) ([]float32, error) {
	if len(src) == 0 || src[0] != hdrFloat32s1 || (len(src)-1)%4 != 0 {
		return dst[:0], fmt.Errorf("%w: float32 vector", ErrCorrupt)
	}
	return decodeFloat32s(src[1:], dst[:0]), nil
}

// decodeFloat32s appends the little-endian float32s in src (len(src) a multiple of 4) to dst.
func decodeFloat32s(src []byte, dst []float32) []float32 {
	dst = slices.Grow(dst, len(src)/4)
	for p := 0; p+4 <= len(src); p += 4 {
		dst = append(dst, math.Float32frombits(binary.LittleEndian.Uint32(src[p:])))
	}
	return dst
}

// appendUint64s appends the header and values of a uint64 vector to dst.
func appendUint64s(dst []byte, v []uint64) []byte {
	dst = slices.Grow(dst, 1+8*len(v))
	dst = append(dst, hdrUint64s1)
	for _, x := range v {
		dst = binary.LittleEndian.AppendUint64(dst, x)
	}
	return dst
}

// decodeUint64Value decodes a value written by appendUint64s, appending to dst[:0].
func decodeUint64Value(src []byte, dst []uint64) ([]uint64, error) {
	dst = dst[:0]
	if len(src) == 0 || src[0] != hdrUint64s1 || (len(src)-1)%8 != 0 {
		return dst, fmt.Errorf("%w: uint64 vector", ErrCorrupt)
	}
	dst = slices.Grow(dst, (len(src)-1)/8)
	for p := 1; p+8 <= len(src); p += 8 {
		dst = append(dst, binary.LittleEndian.Uint64(src[p:]))
	}
	return dst, nil
}
