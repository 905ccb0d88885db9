// Package mnist reads image files in the IDX format of MNIST and Fashion-MNIST, gzipped or
// not, as float32 rows, for the recall tests and benchmarks of package ann.
package mnist

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// DefaultDir is where Debian's dataset-fashion-mnist package installs Fashion-MNIST.
const DefaultDir = "/usr/share/datasets/fashion-mnist"

// ErrFormat is returned (wrapped) for input that is not an IDX file of unsigned bytes.
var ErrFormat = errors.New("mnist: not an IDX ubyte image file")

// maxPixels bounds the size a header may announce (1 GiB of float32s).
const maxPixels = 1 << 28

// Images is a decoded image file: N rows of Dim = Rows·Cols pixels, each 0..255 as a float32,
// laid out row after row in Data.
type Images struct {
	N, Rows, Cols int
	Data          []float32
}

// Dim returns the number of pixels per image.
func (im *Images) Dim() int { return im.Rows * im.Cols }

// Row returns image i. It shares memory with Data.
func (im *Images) Row(i int) []float32 {
	d := im.Dim()
	return im.Data[i*d : (i+1)*d : (i+1)*d]
}

// Load reads the image file at path; a path ending in .gz is gunzipped.
func Load(path string) (*Images, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = bufio.NewReaderSize(f, 1<<16)
	if len(path) > 3 && path[len(path)-3:] == ".gz" {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	im, err := Read(r)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, err)
	}
	return im, nil
}

// Read decodes an uncompressed IDX3 ubyte image file: the magic 0x00000803, then the image
// count, rows and columns as big-endian uint32, then count·rows·cols pixel bytes.
func Read(r io.Reader) (*Images, error) {
	var hdr [16]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("%w: short header: %v", ErrFormat, err)
	}
	if magic := binary.BigEndian.Uint32(hdr[0:]); magic != 0x00000803 {
		return nil, fmt.Errorf("%w: magic %#08x, want 0x00000803", ErrFormat, magic)
	}
	n := binary.BigEndian.Uint32(hdr[4:])
	rows := binary.BigEndian.Uint32(hdr[8:])
	cols := binary.BigEndian.Uint32(hdr[12:])
	if rows == 0 || cols == 0 || rows > 1024 || cols > 1024 || uint64(n)*uint64(rows)*uint64(cols) > maxPixels {
		return nil, fmt.Errorf("%w: implausible shape %d × %d × %d", ErrFormat, n, rows, cols)
	}
	dim := int(rows * cols)
	im := &Images{N: int(n), Rows: int(rows), Cols: int(cols)}
	// Read row by row and let Data grow, so a header announcing more than the input holds
	// fails before it allocates much.
	buf := make([]byte, dim)
	im.Data = make([]float32, 0, min(int(n)*dim, 1<<20))
	for i := 0; i < int(n); i++ {
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, fmt.Errorf("%w: image %d of %d: %v", ErrFormat, i, n, err)
		}
		for _, b := range buf {
			im.Data = append(im.Data, float32(b))
		}
	}
	return im, nil
}

// Encode writes im in the uncompressed IDX3 ubyte format, clamping pixels to 0..255. Tests use
// it to build inputs.
func Encode(im *Images) []byte {
	var b bytes.Buffer
	var hdr [16]byte
	binary.BigEndian.PutUint32(hdr[0:], 0x00000803)
	binary.BigEndian.PutUint32(hdr[4:], uint32(im.N))
	binary.BigEndian.PutUint32(hdr[8:], uint32(im.Rows))
	binary.BigEndian.PutUint32(hdr[12:], uint32(im.Cols))
	b.Write(hdr[:])
	for _, f := range im.Data[:im.N*im.Dim()] {
		b.WriteByte(byte(max(0, min(255, f))))
	}
	return b.Bytes()
}
