package ann

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func TestDotKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 3, 7, 8, 9, 15, 16, 17, 63, 64, 65, 784} {
		a, b := randVec(rng, n), randVec(rng, n)
		var want float64
		for i := range a {
			want += float64(a[i]) * float64(b[i])
		}
		for name, f := range map[string]func(a, b []float32) float32{"dot": dot, "dot8": dot8, "naive": dotNaive} {
			got := float64(f(a, b))
			if math.Abs(got-want) > 1e-4*math.Max(1, math.Abs(want)) {
				t.Errorf("%s(len %d) = %v, want %v", name, n, got, want)
			}
		}
	}
}

// BenchmarkDot compares the kernels at the demo's and Fashion-MNIST's dimensions; the plain
// loop is the baseline (see the ratio in the names' ns/op).
func BenchmarkDot(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{64, 784} {
		x, y := randVec(rng, n), randVec(rng, n)
		for _, k := range []struct {
			name string
			f    func(a, b []float32) float32
		}{{"naive", dotNaive}, {"unroll8x4acc", dot}, {"unroll8x8acc", dot8}} {
			b.Run(fmt.Sprintf("dim=%d/%s", n, k.name), func(b *testing.B) {
				b.SetBytes(int64(8 * n))
				b.ReportAllocs()
				var s float32
				for b.Loop() {
					s += k.f(x, y)
				}
				sink = s
			})
		}
	}
}

var sink float32
