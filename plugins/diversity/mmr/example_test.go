package mmr_test

import (
	"fmt"

	"github.com/podium-rank/podium/plugins/diversity/mmr"
)

func Example() {
	d, err := mmr.New([]byte(`{"lambda":0.5}`), mmr.NativeKernels)
	if err != nil {
		panic(err)
	}
	// Candidates 0 and 1 are near-duplicates; 2 is different and a little less relevant.
	in := mmr.Input{
		Embeddings: []float32{1, 0, 0.99, 0.1, 0, 1},
		Dim:        2,
		Scores:     []float32{0.9, 0.85, 0.8},
	}
	order := make([]int32, 2)
	m, err := d.Order(in, 2, order)
	if err != nil {
		panic(err)
	}
	fmt.Println(order[:m])
	// Output: [0 2]
}
