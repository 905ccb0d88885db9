package ann

import (
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"
)

// dot16 is a candidate kernel (16 wide, 4 accumulators) kept for TestReportKernels.
func dot16(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+16 <= len(a); i += 16 {
		x := a[i : i+16 : i+16]
		y := b[i : i+16 : i+16]
		s0 += x[0]*y[0] + x[4]*y[4] + x[8]*y[8] + x[12]*y[12]
		s1 += x[1]*y[1] + x[5]*y[5] + x[9]*y[9] + x[13]*y[13]
		s2 += x[2]*y[2] + x[6]*y[6] + x[10]*y[10] + x[14]*y[14]
		s3 += x[3]*y[3] + x[7]*y[7] + x[11]*y[11] + x[15]*y[15]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// TestReportKernels compares the dot-product kernels robustly on a shared machine: rounds
// interleave the kernels and each keeps its best round. Run it with
//
//	PODIUM_ANN_REPORT=1 go test -run TestReportKernels -v ./engine/ann/
func TestReportKernels(t *testing.T) {
	if os.Getenv("PODIUM_ANN_REPORT") != "1" || raceEnabled {
		t.Skip("set PODIUM_ANN_REPORT=1 (without -race) to compare the kernels")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{64, 784} {
		x, y := randVec(rng, n), randVec(rng, n)
		ks := []struct {
			name string
			f    func(a, b []float32) float32
		}{{"naive", dotNaive}, {"8x4", dot}, {"8x8", dot8}, {"16x4", dot16}}
		best := make([]time.Duration, len(ks))
		calls := 200000 * 64 / n
		for round := 0; round < 60; round++ {
			for j, k := range ks {
				start := time.Now()
				var s float32
				for range calls {
					s += k.f(x, y)
				}
				sink = s
				d := time.Since(start)
				if best[j] == 0 || d < best[j] {
					best[j] = d
				}
			}
		}
		for j, k := range ks {
			fmt.Printf("dim %d %-5s: %.1f ns (%.2fx naive)\n", n, k.name, float64(best[j])/float64(calls), float64(best[0])/float64(best[j]))
		}
	}
}
