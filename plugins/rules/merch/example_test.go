package merch_test

import (
	"fmt"

	"github.com/podium-rank/podium/plugins/rules/merch"
)

func Example() {
	// The host's codes: brands b1 and b7, item i42 has dense id 42.
	codes := map[string]int32{"brand/b1": 1, "brand/b7": 7, "id/i42": 42}
	lookup := func(space, value string) int32 {
		if c, ok := codes[space+"/"+value]; ok {
			return c
		}
		return -1
	}
	r, err := merch.New([]byte(`{
		"drop_if": {"feature": "stock", "le": 0},
		"boost": [{"attribute": "brand", "value": "b7", "add": 0.5}],
		"pin": {"i42": 0},
		"features": ["stock"], "attributes": ["brand"]}`), lookup)
	if err != nil {
		panic(err)
	}
	in := merch.Input{
		IDs:        []uint32{40, 41, 42},
		Features:   []float32{3, 0, 5}, // stock
		Attributes: []int32{7, 1, 1},   // brand
		Scores:     []float32{0.25, 0.5, 0.75},
	}
	out := merch.Output{Keep: make([]uint8, 3), Scores: make([]float32, 3), Pin: make([]int32, 3)}
	if err := r.Apply(in, out); err != nil {
		panic(err)
	}
	fmt.Println(out.Keep, out.Scores, out.Pin)
	// Output: [1 0 1] [0.75 0.5 0.75] [-1 -1 0]
}
