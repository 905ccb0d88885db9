package features

import (
	"encoding/binary"
	"math"
	"testing"
)

func TestUserRowRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		cols []int
		vals []float32
		emb  []float32
	}{
		{"empty", nil, nil, nil},
		{"features only", []int{0, 3, 127, 128, MaxColumns - 1}, []float32{1, -2, 0, nan, float32(math.Inf(1))}, nil},
		{"embedding only", nil, nil, []float32{0.25, -0.5, 1e-30}},
		{"both", []int{5}, []float32{7}, []float32{1, 2, 3, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc := appendUserRow([]byte("prefix"), tt.cols, tt.vals, tt.emb)
			requireEqual(t, string(enc[:6]), "prefix", "appendUserRow keeps dst")
			enc = enc[6:]
			requireEqual(t, len(enc), userRowSize(tt.cols, tt.emb), "userRowSize")
			// A dirty row with spare capacity must come back holding exactly the new row.
			r := UserRow{Cols: []int{9, 9, 9}, Vals: []float32{9, 9, 9}, Emb: []float32{9}}
			requireNoError(t, decodeUserRow(enc, &r), "decodeUserRow")
			requireEqual(t, len(r.Cols), len(tt.cols), "len(Cols)")
			for k := range tt.cols {
				requireEqual(t, r.Cols[k], tt.cols[k], "Cols")
			}
			requireSameFloats(t, r.Vals, tt.vals, "Vals")
			requireSameFloats(t, r.Emb, tt.emb, "Emb")
		})
	}
}

func TestUserRowSize32x64(t *testing.T) {
	cols := make([]int, 32)
	for i := range cols {
		cols[i] = i
	}
	requireEqual(t, userRowSize(cols, make([]float32, 64)), 419, "32 features + 64-d embedding")
}

func TestDecodeUserRowRejects(t *testing.T) {
	good := appendUserRow(nil, []int{1, 200}, []float32{1, 2}, []float32{3})
	uv := func(x uint64) []byte { return binary.AppendUvarint(nil, x) }
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	tests := []struct {
		name string
		in   []byte
	}{
		{"nil", nil},
		{"wrong header", append([]byte{hdrFloat32s1}, good[1:]...)},
		{"future version", append([]byte{0x7f}, good[1:]...)},
		{"truncated", good[:len(good)-1]},
		{"trailing byte", append(append([]byte{}, good...), 0)},
		{"header only", []byte{hdrUserRow1}},
		{"huge count", cat([]byte{hdrUserRow1}, uv(math.MaxUint64), make([]byte, 16))},
		{"count beyond input", cat([]byte{hdrUserRow1}, uv(3), uv(0), make([]byte, 4), uv(0))},
		{"duplicate column", cat([]byte{hdrUserRow1}, uv(2), uv(3), make([]byte, 4), uv(3), make([]byte, 4), uv(0))},
		{"column too large", cat([]byte{hdrUserRow1}, uv(1), uv(MaxColumns), make([]byte, 4), uv(0))},
		{"overlong varint", cat([]byte{hdrUserRow1}, []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01})},
		{"embedding count off", cat([]byte{hdrUserRow1}, uv(0), uv(2), make([]byte, 4))},
		{"embedding not multiple of 4", cat([]byte{hdrUserRow1}, uv(0), uv(1), make([]byte, 5))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := UserRow{Cols: []int{1}, Vals: []float32{1}, Emb: []float32{1}}
			requireErrorIs(t, decodeUserRow(tt.in, &r), ErrCorrupt, "decodeUserRow")
			requireEqual(t, len(r.Cols)+len(r.Vals)+len(r.Emb), 0, "row left empty")
		})
	}
}

func TestFloat32sAndUint64sCodec(t *testing.T) {
	v := []float32{1, nan, -0.0, 3.5}
	got, err := decodeFloat32Value(appendFloat32s(nil, v), make([]float32, 9))
	requireNoError(t, err, "decode float32s")
	requireSameFloats(t, got, v, "float32s")
	got, err = decodeFloat32Value(appendFloat32s(nil, nil), nil)
	requireNoError(t, err, "decode empty float32s")
	requireEqual(t, len(got), 0, "empty float32s")

	u := []uint64{0, 1, math.MaxUint64}
	gu, err := decodeUint64Value(appendUint64s(nil, u), nil)
	requireNoError(t, err, "decode uint64s")
	requireEqual(t, gu, u, "uint64s")

	bad := [][]byte{nil, {hdrFloat32s1, 1}, {hdrUint64s1}, appendUint64s(nil, u)}
	for _, b := range bad {
		_, err := decodeFloat32Value(b, nil)
		requireErrorIs(t, err, ErrCorrupt, "float32s from bad bytes")
	}
	_, err = decodeUint64Value(appendFloat32s(nil, v[:2]), nil)
	requireErrorIs(t, err, ErrCorrupt, "uint64s from float32 bytes")
	_, err = decodeUint64Value([]byte{hdrUint64s1, 1, 2}, nil)
	requireErrorIs(t, err, ErrCorrupt, "uint64s truncated")
}

// FuzzDecodeUserRow feeds garbage to the decoder: it must never panic, never return more
// values than the input can hold, and whatever it accepts must survive a re-encode.
func FuzzDecodeUserRow(f *testing.F) {
	f.Add(appendUserRow(nil, []int{1, 200}, []float32{1, 2}, []float32{3}))
	f.Add(appendUserRow(nil, nil, nil, nil))
	f.Add([]byte{hdrUserRow1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{hdrUserRow1, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01})
	f.Fuzz(func(t *testing.T, in []byte) {
		var r UserRow
		if err := decodeUserRow(in, &r); err != nil {
			if len(r.Cols)+len(r.Vals)+len(r.Emb) != 0 {
				t.Fatalf("row not empty after error %v", err)
			}
			return
		}
		if 5*len(r.Cols)+4*len(r.Emb) > len(in) {
			t.Fatalf("decoded %d features and %d-d embedding from %d bytes", len(r.Cols), len(r.Emb), len(in))
		}
		enc := appendUserRow(nil, r.Cols, r.Vals, r.Emb)
		var r2 UserRow
		if err := decodeUserRow(enc, &r2); err != nil {
			t.Fatalf("re-encoded row does not decode: %v", err)
		}
		requireEqual(t, r2.Cols, r.Cols, "Cols after re-encode")
		for k := range r.Vals {
			if math.Float32bits(r2.Vals[k]) != math.Float32bits(r.Vals[k]) {
				t.Fatalf("Vals[%d] changed bits", k)
			}
		}
		for k := range r.Emb {
			if math.Float32bits(r2.Emb[k]) != math.Float32bits(r.Emb[k]) {
				t.Fatalf("Emb[%d] changed bits", k)
			}
		}
	})
}

// FuzzDecodeFloat32s checks the float32 and uint64 vector decoders on garbage.
func FuzzDecodeFloat32s(f *testing.F) {
	f.Add(appendFloat32s(nil, []float32{1, 2}))
	f.Add(appendUint64s(nil, []uint64{1, 2}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		if v, err := decodeFloat32Value(in, nil); err == nil {
			if 1+4*len(v) != len(in) {
				t.Fatalf("%d float32s from %d bytes", len(v), len(in))
			}
			if string(appendFloat32s(nil, v)) != string(in) {
				t.Fatalf("float32s re-encode differs")
			}
		}
		if v, err := decodeUint64Value(in, nil); err == nil {
			if string(appendUint64s(nil, v)) != string(in) {
				t.Fatalf("uint64s re-encode differs")
			}
		}
	})
}
