//go:build !race

package mmr

import (
	"math/rand/v2"
	"testing"
)

func TestOrderDoesNotAllocate(t *testing.T) {
	in := randomInput(rand.New(rand.NewPCG(1, 2)), 1000, 64)
	out := make([]int32, 20)
	for _, params := range []string{
		`{"pool":200,"attribute":"cat","max_per_value":2,"attributes":["cat"]}`,
		`{"mode":"round_robin","attribute":"cat","max_per_value":2,"attributes":["cat"]}`,
	} {
		d, err := New([]byte(params), NativeKernels)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Order(in, 20, out); err != nil { // grows the scratch
			t.Fatal(err)
		}
		if a := testing.AllocsPerRun(20, func() { _, _ = d.Order(in, 20, out) }); a != 0 {
			t.Fatalf("%s: Order allocates %v times per call", params, a)
		}
	}
}
