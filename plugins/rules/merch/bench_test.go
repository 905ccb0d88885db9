package merch

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// benchInput is n candidates with 32 feature columns (stock first, price second) and two
// attributes (brand of 400 values, category of 40), shaped like the demo catalog.
func benchInput(n int) (Input, string) {
	rng := rand.New(rand.NewPCG(8, 9))
	in := Input{IDs: make([]uint32, n), Features: make([]float32, 32*n), Attributes: make([]int32, 2*n),
		Scores: make([]float32, n)}
	for i := range n {
		in.IDs[i] = uint32(rng.IntN(100_000))
		in.Scores[i] = float32(rng.Float64())
		in.Attributes[i] = int32(rng.IntN(400))
		in.Attributes[n+i] = int32(rng.IntN(40))
	}
	for i := range in.Features {
		in.Features[i] = float32(rng.IntN(20) - 1)
	}
	cols := `"features":["stock"`
	for j := 1; j < 32; j++ {
		cols += `,"f` + strconv.Itoa(j) + `"`
	}
	return in, cols + `],"attributes":["brand","category"]`
}

// BenchmarkApply runs the rules over 1000 candidates × 32 features.
func BenchmarkApply(b *testing.B) {
	const n = 1000
	in, cols := benchInput(n)
	out := Output{Keep: make([]uint8, n), Scores: make([]float32, n), Pin: make([]int32, n)}
	for _, tc := range []struct{ name, params string }{
		{"none", `{` + cols + `}`},
		{"drop", `{"drop_if":{"feature":"stock","le":0},` + cols + `}`},
		{"boost", `{"boost":[{"attribute":"brand","values":["b7","b9"],"add":0.5}],"bury":[{"feature":"f1","gt":15,"mul":0.5}],` + cols + `}`},
		{"pin", `{"pin":{"i1":0,"i2":3,"i3":5},` + cols + `}`},
		{"cap", `{"cap":{"attribute":"brand","max":3},` + cols + `}`},
		{"cap-category", `{"cap":{"attribute":"category","max":3},` + cols + `}`},
		{"all", `{"drop_if":{"feature":"stock","le":0},"boost":[{"attribute":"brand","values":["b7","b9"],"add":0.5}],` +
			`"bury":[{"feature":"f1","gt":15,"mul":0.5}],"pin":{"i1":0,"i2":3},"cap":{"attribute":"brand","max":3},` + cols + `}`},
	} {
		r, err := New([]byte(tc.params), table)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := r.Apply(in, out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
