//go:build !race

package twotower

import "testing"

func TestRankDoesNotAllocate(t *testing.T) {
	in, cols := benchInput(1000, 64)
	params := `{"similarity":"cosine","bias_feature":"popularity","bias_weight":0.1,"bias_transform":"log1p","features":["` + cols[0] + `"`
	for _, c := range cols[1:] {
		params += `,"` + c + `"`
	}
	r, err := New([]byte(params+`]}`), NativeKernels)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, 1000)
	if a := testing.AllocsPerRun(20, func() { _ = r.Rank(in, out) }); a != 0 {
		t.Fatalf("Rank allocates %v times per call", a)
	}
}
