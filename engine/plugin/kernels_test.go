package plugin

import (
	"math"
	"math/rand/v2"
	"testing"
)

func naiveDot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

func randVec(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = r.Float32()*2 - 1
	}
	return v
}

func TestKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, dim := range []int{1, 3, 4, 7, 32, 33} {
		const n = 9
		q, rows := randVec(r, dim), randVec(r, n*dim)
		out := make([]float32, n)
		Dot(q, rows, out)
		for i := range n {
			if want := naiveDot(q, rows[i*dim:(i+1)*dim]); math.Abs(float64(out[i])-want) > 1e-4 {
				t.Fatalf("dim %d: Dot[%d] = %v, want %v", dim, i, out[i], want)
			}
		}
		Cosine(q, rows, out)
		for i := range n {
			row := rows[i*dim : (i+1)*dim]
			want := naiveDot(q, row) / math.Sqrt(naiveDot(q, q)*naiveDot(row, row))
			if math.Abs(float64(out[i])-want) > 1e-4 {
				t.Fatalf("dim %d: Cosine[%d] = %v, want %v", dim, i, out[i], want)
			}
		}
		// WSum over dim columns of n rows.
		w, cols := randVec(r, dim), randVec(r, dim*n)
		WSum(w, cols, out)
		for i := range n {
			var want float64
			for j := range dim {
				want += float64(w[j]) * float64(cols[j*n+i])
			}
			if math.Abs(float64(out[i])-want) > 1e-4 {
				t.Fatalf("m %d: WSum[%d] = %v, want %v", dim, i, out[i], want)
			}
		}
	}
	zero := make([]float32, 4)
	out := []float32{9}
	Cosine(zero, []float32{1, 2, 3, 4}, out)
	if out[0] != 0 {
		t.Fatalf("cosine with a zero vector = %v", out[0])
	}
	x := []float32{0, 100, -100}
	Sigmoid(x)
	if x[0] != 0.5 || x[1] != 1 || x[2] > 1e-30 {
		t.Fatalf("Sigmoid = %v", x)
	}
}

// BenchmarkKernels compares the host kernels with the plain loops a guest would run, in
// native Go (the guest versions are in BenchmarkVectorKernels).
func BenchmarkKernels(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	const n, dim = 1000, 32
	q, rows, out := randVec(r, dim), randVec(r, n*dim), make([]float32, n)
	b.Run("dot", func(b *testing.B) {
		b.SetBytes(4 * n * dim)
		for b.Loop() {
			Dot(q, rows, out)
		}
	})
	b.Run("wsum", func(b *testing.B) {
		b.SetBytes(4 * n * dim)
		for b.Loop() {
			WSum(q, rows, out)
		}
	})
	b.Run("cosine", func(b *testing.B) {
		b.SetBytes(4 * n * dim)
		for b.Loop() {
			Cosine(q, rows, out)
		}
	})
}
