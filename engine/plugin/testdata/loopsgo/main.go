// Command loopsgo is a Go guest with the dot-product loops of testdata/loops, for measuring
// deadline enforcement on the code the Go compiler emits. Not a plugin.
package main

import "unsafe"

var arena [1 << 18]float32

func main() {}

//go:wasmexport arena
func getArena() int32 { return int32(uintptr(unsafe.Pointer(&arena[0]))) }

func view(p, n int32) []float32 {
	base := int32(uintptr(unsafe.Pointer(&arena[0])))
	off := (p - base) / 4
	return arena[off : off+n]
}

//go:wasmexport dot_scalar
func dotScalar(qp, rp, n, dim, op int32) {
	q, rows, out := view(qp, dim), view(rp, n*dim), view(op, n)
	for i := range out {
		r := rows[int(dim)*i : int(dim)*(i+1)]
		var s float32
		for j, x := range q {
			s += x * r[j]
		}
		out[i] = s
	}
}

//go:wasmexport dot_unroll4
func dotUnroll4(qp, rp, n, dim, op int32) {
	q, rows, out := view(qp, dim), view(rp, n*dim), view(op, n)
	for i := range out {
		r := rows[int(dim)*i : int(dim)*(i+1)]
		var s0, s1, s2, s3 float32
		for j := 0; j+3 < len(q); j += 4 {
			s0 += q[j] * r[j]
			s1 += q[j+1] * r[j+1]
			s2 += q[j+2] * r[j+2]
			s3 += q[j+3] * r[j+3]
		}
		out[i] = (s0 + s1) + (s2 + s3)
	}
}

//go:wasmimport podium dot
func hostDot(q, rows unsafe.Pointer, n, dim int32, out unsafe.Pointer)

//go:wasmexport dot_host
func dotHost(qp, rp, n, dim, op int32) {
	q, rows, out := view(qp, dim), view(rp, n*dim), view(op, n)
	hostDot(unsafe.Pointer(&q[0]), unsafe.Pointer(&rows[0]), n, dim, unsafe.Pointer(&out[0]))
}

//go:wasmexport nop
func nop() {}
