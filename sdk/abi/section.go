package abi

import (
	"bytes"
	"errors"
	"fmt"
)

// wasmHeader is the magic and version 1 of a wasm binary.
var wasmHeader = []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}

// ErrNotWasm reports bytes that are not a wasm binary module.
var ErrNotWasm = errors.New("abi: not a wasm binary")

// CustomSection returns the payload of the last custom section called name in the wasm
// binary, and whether there was one. The payload aliases wasm. It walks the section
// headers only and fails on a truncated or malformed binary.
func CustomSection(wasm []byte, name string) ([]byte, bool, error) {
	var found []byte
	ok := false
	err := walkSections(wasm, func(id byte, start, end int, secName string, payload []byte) {
		if id == 0 && secName == name {
			found, ok = payload, true
		}
	})
	return found, ok, err
}

// SetCustomSection returns a copy of the wasm binary with every custom section called name
// removed and one with the given payload appended at the end.
func SetCustomSection(wasm []byte, name string, payload []byte) ([]byte, error) {
	out := make([]byte, 0, len(wasm)+len(name)+len(payload)+16)
	out = append(out, wasmHeader...)
	err := walkSections(wasm, func(id byte, start, end int, secName string, _ []byte) {
		if id == 0 && secName == name {
			return
		}
		out = append(out, wasm[start:end]...)
	})
	if err != nil {
		return nil, err
	}
	body := appendULEB(nil, uint64(len(name)))
	body = append(body, name...)
	body = append(body, payload...)
	out = append(out, 0)
	out = appendULEB(out, uint64(len(body)))
	return append(out, body...), nil
}

// walkSections calls f for each section with its id, its byte range (header included) and,
// for custom sections, its name and payload.
func walkSections(wasm []byte, f func(id byte, start, end int, name string, payload []byte)) error {
	if len(wasm) < len(wasmHeader) || !bytes.Equal(wasm[:len(wasmHeader)], wasmHeader) {
		return ErrNotWasm
	}
	i := len(wasmHeader)
	for i < len(wasm) {
		start := i
		id := wasm[i]
		i++
		size, n := readULEB(wasm[i:])
		if n == 0 || size > uint64(len(wasm)-i-n) {
			return fmt.Errorf("%w: truncated section at offset %d", ErrNotWasm, start)
		}
		i += n
		end := i + int(size)
		var name string
		var payload []byte
		if id == 0 {
			nlen, m := readULEB(wasm[i:end])
			if m == 0 || nlen > uint64(end-i-m) {
				return fmt.Errorf("%w: bad custom section name at offset %d", ErrNotWasm, start)
			}
			name = string(wasm[i+m : i+m+int(nlen)])
			payload = wasm[i+m+int(nlen) : end]
		}
		f(id, start, end, name, payload)
		i = end
	}
	return nil
}

// readULEB decodes an unsigned LEB128 of at most 5 bytes (a u32) and returns it with the
// number of bytes read, or 0 bytes if b holds no valid u32.
func readULEB(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < len(b) && i < 5; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			if v > 0xffffffff {
				return 0, 0
			}
			return v, i + 1
		}
	}
	return 0, 0
}

func appendULEB(dst []byte, v uint64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			c |= 0x80
		}
		dst = append(dst, c)
		if v == 0 {
			return dst
		}
	}
}
