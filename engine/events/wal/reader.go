package wal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
)

// reader reads the records of one segment in order, checking frames, sequence numbers and
// checksums. It is not goroutine-safe.
type reader struct {
	br       *bufio.Reader
	s        segment
	maxBytes int
	off      int64  // offset just past the last whole record read
	seq      uint64 // seq the next record must have
	buf      []byte
	fr       [frameSize]byte
}

func newReader(f *os.File, s segment, maxBytes int) *reader {
	return &reader{br: bufio.NewReaderSize(f, 256<<10), s: s, maxBytes: maxBytes, seq: s.first}
}

func (r *reader) header() error {
	var h [headerSize]byte
	if _, err := io.ReadFull(r.br, h[:]); err != nil {
		return fmt.Errorf("short segment header: %w", err)
	}
	if string(h[:8]) != magic {
		return errors.New("bad segment magic")
	}
	if first := binary.LittleEndian.Uint64(h[8:]); first != r.s.first {
		return fmt.Errorf("segment header says first seq %d, its name %d", first, r.s.first)
	}
	r.off = headerSize
	return nil
}

// next returns the next record, io.EOF at a clean end, or another error for a torn or
// damaged record. payload is valid until the next call.
func (r *reader) next() (uint64, []byte, error) {
	fr := r.fr[:]
	n, err := io.ReadFull(r.br, fr)
	if n == 0 && err == io.EOF {
		return 0, nil, io.EOF
	}
	if err != nil {
		return 0, nil, fmt.Errorf("short record frame (%d bytes)", n)
	}
	size := binary.LittleEndian.Uint32(fr[0:])
	sum := binary.LittleEndian.Uint32(fr[4:])
	seq := binary.LittleEndian.Uint64(fr[8:])
	if seq != r.seq {
		return 0, nil, fmt.Errorf("record has seq %d, want %d", seq, r.seq)
	}
	if int64(size) > int64(r.maxBytes) {
		return 0, nil, fmt.Errorf("record of %d bytes is over the %d-byte limit", size, r.maxBytes)
	}
	if cap(r.buf) < int(size) {
		r.buf = make([]byte, size)
	}
	p := r.buf[:size]
	if _, err := io.ReadFull(r.br, p); err != nil {
		return 0, nil, fmt.Errorf("short record payload: %w", err)
	}
	crc := crc32.Update(0, castagnoli, fr[8:16])
	if crc = crc32.Update(crc, castagnoli, p); crc != sum {
		return 0, nil, fmt.Errorf("record %d fails its checksum", seq)
	}
	r.off += frameSize + int64(size)
	r.seq++
	return seq, p, nil
}
