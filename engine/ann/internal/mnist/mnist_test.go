package mnist

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	im := &Images{N: 3, Rows: 2, Cols: 3, Data: []float32{
		0, 1, 2, 3, 4, 5,
		255, 254, 253, 0, 0, 0,
		9, 8, 7, 6, 5, 4,
	}}
	got, err := Read(bytes.NewReader(Encode(im)))
	if err != nil {
		t.Fatal(err)
	}
	if got.N != 3 || got.Dim() != 6 || !slices.Equal(got.Data, im.Data) || !slices.Equal(got.Row(1), im.Data[6:12]) {
		t.Fatalf("Read = %+v, want %+v", got, im)
	}
	// Gzipped, through Load.
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write(Encode(im))
	zw.Close()
	path := filepath.Join(t.TempDir(), "x-images-idx3-ubyte.gz")
	if err := os.WriteFile(path, zb.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err = Load(path)
	if err != nil || !slices.Equal(got.Data, im.Data) {
		t.Fatalf("Load = %+v, %v", got, err)
	}
}

func TestBadInput(t *testing.T) {
	good := Encode(&Images{N: 2, Rows: 2, Cols: 2, Data: make([]float32, 8)})
	labels := slices.Clone(good)
	labels[3] = 0x01 // the IDX1 label file magic
	huge := slices.Clone(good)
	huge[4] = 0xff // 4 billion images
	for name, in := range map[string][]byte{
		"empty":     nil,
		"short hdr": good[:10],
		"labels":    labels,
		"truncated": good[:len(good)-1],
		"huge":      huge,
		// Found by FuzzRead (testdata/fuzz/FuzzRead/6498f877f56cfb57): a header announcing
		// 3M images of 256 × 512 once made Read allocate 34 GB up front.
		"announces more than it holds": []byte("\x00\x00\b\x03\x00000\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00\x02\x01\x02\x03\x04"),
		"zero rows":                    append(append(slices.Clone(good[:8]), 0, 0, 0, 0), good[12:]...),
	} {
		if _, err := Read(bytes.NewReader(in)); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: error = %v, want ErrFormat", name, err)
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.gz")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: error = %v", err)
	}
}

func FuzzRead(f *testing.F) {
	f.Add(Encode(&Images{N: 1, Rows: 2, Cols: 2, Data: []float32{1, 2, 3, 4}}))
	f.Add([]byte{0, 0, 8, 3, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 1, 7})
	f.Fuzz(func(t *testing.T, in []byte) {
		im, err := Read(bytes.NewReader(in))
		if err != nil {
			return
		}
		if len(im.Data) != im.N*im.Dim() || len(in) < 16+len(im.Data) {
			t.Fatalf("decoded %d pixels for shape %d × %d from %d bytes", len(im.Data), im.N, im.Dim(), len(in))
		}
		back := Encode(im)
		if !bytes.Equal(back, in[:len(back)]) {
			t.Fatal("re-encoding differs from the input")
		}
	})
}
