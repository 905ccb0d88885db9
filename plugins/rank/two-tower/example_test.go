package twotower_test

import (
	"fmt"

	twotower "github.com/podium-rank/podium/plugins/rank/two-tower"
)

func Example() {
	r, err := twotower.New([]byte(`{"bias_feature":"popularity","bias_weight":0.5,"features":["popularity"]}`),
		twotower.NativeKernels)
	if err != nil {
		panic(err)
	}
	out := make([]float32, 2)
	err = r.Rank(twotower.Input{
		Query:      []float32{1, 0},
		Embeddings: []float32{0.5, 0.5 /* item 0 */, 1, 0 /* item 1 */},
		Features:   []float32{2, 0}, // popularity
		Scores:     []float32{0, 0},
	}, out)
	if err != nil {
		panic(err)
	}
	fmt.Println(out)
	// Output: [1.5 1]
}
