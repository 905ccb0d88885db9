package plugin

import (
	"context"
	"fmt"
	"math"
	"unsafe"

	"github.com/tetratelabs/wazero/api"
)

// The vector kernels that guests import from module "podium" (sdk/ABI.md §1). They run as
// native Go over views of guest memory, so a guest in any language gets native speed on the
// heavy loops; see RATIONALE.md, "Why host vector kernels?".

// KernelError is the panic value of a kernel called with bad arguments; wazero turns it into
// a trap of the calling guest, which the host reports as a FaultTrap.
type KernelError struct {
	Kernel string
	Reason string
}

// Error implements error.
func (e *KernelError) Error() string { return "plugin: podium." + e.Kernel + ": " + e.Reason }

// guestF32 returns the n float32 values at ptr in the guest memory, without copying. It
// panics with a *KernelError if the range is misaligned or outside memory.
func guestF32(mem api.Memory, kernel string, ptr, n uint32) []float32 {
	if n == 0 {
		return nil
	}
	if ptr%4 != 0 {
		panic(&KernelError{kernel, fmt.Sprintf("address %#x is not aligned to 4 bytes", ptr)})
	}
	size := uint64(n) * 4
	if size > math.MaxUint32 {
		panic(&KernelError{kernel, fmt.Sprintf("%d floats do not fit in memory", n)})
	}
	b, ok := mem.Read(ptr, uint32(size))
	if !ok {
		panic(&KernelError{kernel, fmt.Sprintf("[%#x, +%d bytes) is outside memory (%d bytes)", ptr, size, mem.Size())})
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), n)
}

func mul(kernel string, a, b uint32) uint32 {
	p := uint64(a) * uint64(b)
	if p > math.MaxUint32/4 {
		panic(&KernelError{kernel, fmt.Sprintf("%d x %d floats do not fit in memory", a, b)})
	}
	return uint32(p)
}

// hostDot implements podium.dot(q, rows, n, dim, out).
func hostDot(_ context.Context, m api.Module, s []uint64) {
	mem := m.Memory()
	n, dim := uint32(s[2]), uint32(s[3])
	q := guestF32(mem, "dot", uint32(s[0]), dim)
	rows := guestF32(mem, "dot", uint32(s[1]), mul("dot", n, dim))
	out := guestF32(mem, "dot", uint32(s[4]), n)
	Dot(q, rows, out)
}

// hostCosine implements podium.cosine(q, rows, n, dim, out).
func hostCosine(_ context.Context, m api.Module, s []uint64) {
	mem := m.Memory()
	n, dim := uint32(s[2]), uint32(s[3])
	q := guestF32(mem, "cosine", uint32(s[0]), dim)
	rows := guestF32(mem, "cosine", uint32(s[1]), mul("cosine", n, dim))
	out := guestF32(mem, "cosine", uint32(s[4]), n)
	Cosine(q, rows, out)
}

// hostWSum implements podium.wsum(w, cols, m, n, out).
func hostWSum(_ context.Context, m api.Module, s []uint64) {
	mem := m.Memory()
	k, n := uint32(s[2]), uint32(s[3])
	w := guestF32(mem, "wsum", uint32(s[0]), k)
	cols := guestF32(mem, "wsum", uint32(s[1]), mul("wsum", k, n))
	out := guestF32(mem, "wsum", uint32(s[4]), n)
	WSum(w, cols, out)
}

// hostSigmoid implements podium.sigmoid(x, n).
func hostSigmoid(_ context.Context, m api.Module, s []uint64) {
	Sigmoid(guestF32(m.Memory(), "sigmoid", uint32(s[0]), uint32(s[1])))
}

// Dot sets out[i] to the dot product of q with row i of rows, a row-major matrix of
// len(out) rows of len(q) values. It panics if rows is shorter. The summation order is
// fixed (four interleaved partial sums), so results are reproducible.
func Dot(q, rows, out []float32) {
	dim := len(q)
	_ = rows[:len(out)*dim]
	i := 0
	// Two rows at a time: eight independent sums hide the latency of the adds.
	for ; i+2 <= len(out); i += 2 {
		out[i], out[i+1] = dot2(q, rows[i*dim:(i+1)*dim], rows[(i+1)*dim:(i+2)*dim])
	}
	for ; i < len(out); i++ {
		out[i] = dot(q, rows[i*dim:(i+1)*dim])
	}
}

// dot2 returns the dot products of a with b and with c, each summed in the order of dot.
func dot2(a, b, c []float32) (float32, float32) {
	b, c = b[:len(a)], c[:len(a)]
	var s0, s1, s2, s3, t0, t1, t2, t3 float32
	j := 0
	for ; j+4 <= len(a); j += 4 {
		a0, a1, a2, a3 := a[j], a[j+1], a[j+2], a[j+3]
		s0 += a0 * b[j]
		s1 += a1 * b[j+1]
		s2 += a2 * b[j+2]
		s3 += a3 * b[j+3]
		t0 += a0 * c[j]
		t1 += a1 * c[j+1]
		t2 += a2 * c[j+2]
		t3 += a3 * c[j+3]
	}
	for ; j < len(a); j++ {
		s0 += a[j] * b[j]
		t0 += a[j] * c[j]
	}
	return (s0 + s1) + (s2 + s3), (t0 + t1) + (t2 + t3)
}

func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	j := 0
	for ; j+4 <= len(a); j += 4 {
		s0 += a[j] * b[j]
		s1 += a[j+1] * b[j+1]
		s2 += a[j+2] * b[j+2]
		s3 += a[j+3] * b[j+3]
	}
	for ; j < len(a); j++ {
		s0 += a[j] * b[j]
	}
	return (s0 + s1) + (s2 + s3)
}

// Cosine sets out[i] to the cosine similarity of q and row i of rows (see Dot), or 0 when
// either vector is zero.
func Cosine(q, rows, out []float32) {
	dim := len(q)
	_ = rows[:len(out)*dim]
	qn := dot(q, q)
	for i := range out {
		r := rows[i*dim : (i+1)*dim]
		d, rn := dot(q, r), dot(r, r)
		if qn == 0 || rn == 0 {
			out[i] = 0
			continue
		}
		out[i] = float32(float64(d) / math.Sqrt(float64(qn)*float64(rn)))
	}
}

// WSum sets out[i] to the sum over j of w[j]·cols[j·n+i], with n = len(out): a weighted sum
// of the columns of a column-major matrix. It panics if cols is shorter than len(w)·n.
func WSum(w, cols, out []float32) {
	n := len(out)
	_ = cols[:len(w)*n]
	clear(out)
	j := 0
	// Eight columns per pass over out: one load and store of out[i] per eight products.
	for ; j+8 <= len(w); j += 8 {
		w0, w1, w2, w3, w4, w5, w6, w7 := w[j], w[j+1], w[j+2], w[j+3], w[j+4], w[j+5], w[j+6], w[j+7]
		c := cols[j*n : (j+8)*n]
		c0, c1, c2, c3 := c[:n], c[n:2*n], c[2*n:3*n], c[3*n:4*n]
		c4, c5, c6, c7 := c[4*n:5*n], c[5*n:6*n], c[6*n:7*n], c[7*n:8*n]
		for i := range out {
			out[i] += ((w0*c0[i] + w1*c1[i]) + (w2*c2[i] + w3*c3[i])) + ((w4*c4[i] + w5*c5[i]) + (w6*c6[i] + w7*c7[i]))
		}
	}
	for ; j < len(w); j++ {
		wj, c := w[j], cols[j*n:(j+1)*n]
		for i := range out {
			out[i] += wj * c[i]
		}
	}
}

// Sigmoid replaces each x[i] by 1/(1+exp(-x[i])).
func Sigmoid(x []float32) {
	for i, v := range x {
		x[i] = float32(1 / (1 + math.Exp(-float64(v))))
	}
}
