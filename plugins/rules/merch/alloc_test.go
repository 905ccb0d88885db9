//go:build !race

package merch

import "testing"

func TestApplyDoesNotAllocate(t *testing.T) {
	in, cols := benchInput(3000) // larger than the scratch New allocates: it grows once
	r, err := New([]byte(`{"drop_if":{"feature":"stock","le":0},"boost":[{"attribute":"brand","values":["b7","b9"],"add":0.5}],`+
		`"pin":{"i1":0},"cap":{"attribute":"brand","max":3},`+cols+`}`), table)
	if err != nil {
		t.Fatal(err)
	}
	n := len(in.Scores)
	out := Output{Keep: make([]uint8, n), Scores: make([]float32, n), Pin: make([]int32, n)}
	if err := r.Apply(in, out); err != nil {
		t.Fatal(err)
	}
	if a := testing.AllocsPerRun(20, func() { _ = r.Apply(in, out) }); a != 0 {
		t.Fatalf("Apply allocates %v times per call", a)
	}
}
