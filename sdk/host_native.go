//go:build !wasip1

package sdk

import (
	"math"
	"os"
	"unsafe"
)

// Native stand-ins for the host imports, so that plugin code builds and runs outside
// wasm (unit tests, benchmarks against the guest build). Lookups resolve nothing; logs go
// to stderr.

func hostLog(level int32, msg unsafe.Pointer, n int32) {
	os.Stderr.Write(append(unsafe.Slice((*byte)(msg), n), '\n'))
}

func hostLookup(space unsafe.Pointer, spaceLen int32, value unsafe.Pointer, valueLen int32) int32 {
	return -1
}

func floats(p unsafe.Pointer, n int32) []float32 { return unsafe.Slice((*float32)(p), n) }

func hostDot(q, rows unsafe.Pointer, n, dim int32, out unsafe.Pointer) {
	qs, rs, os := floats(q, dim), floats(rows, n*dim), floats(out, n)
	for i := range os {
		var s float32
		for j, x := range qs {
			s += x * rs[int(dim)*i+j]
		}
		os[i] = s
	}
}

func hostCosine(q, rows unsafe.Pointer, n, dim int32, out unsafe.Pointer) {
	qs, rs, os := floats(q, dim), floats(rows, n*dim), floats(out, n)
	var qn float64
	for _, x := range qs {
		qn += float64(x) * float64(x)
	}
	for i := range os {
		var d, rn float64
		for j, x := range qs {
			r := float64(rs[int(dim)*i+j])
			d += float64(x) * r
			rn += r * r
		}
		if qn == 0 || rn == 0 {
			os[i] = 0
			continue
		}
		os[i] = float32(d / math.Sqrt(qn*rn))
	}
}

func hostWSum(w, cols unsafe.Pointer, m, n int32, out unsafe.Pointer) {
	ws, cs, os := floats(w, m), floats(cols, m*n), floats(out, n)
	clear(os)
	for j, wj := range ws {
		for i := range os {
			os[i] += wj * cs[int(n)*j+i]
		}
	}
}

func hostSigmoid(x unsafe.Pointer, n int32) {
	xs := floats(x, n)
	for i, v := range xs {
		xs[i] = float32(1 / (1 + math.Exp(-float64(v))))
	}
}
