package ann_test

import (
	"fmt"

	"github.com/podium-rank/podium/engine/ann"
)

func Example() {
	idx := ann.NewHNSW(3, ann.Cosine, ann.HNSWConfig{})
	vecs := [][]float32{{1, 0, 0}, {0.9, 0.1, 0}, {0, 1, 0}, {0, 0, 1}, {0.5, 0.5, 0}}
	for id, v := range vecs {
		if err := idx.Upsert(uint32(id), v); err != nil {
			panic(err)
		}
	}
	idx.Delete(1)
	inStock := ann.FilterFunc(func(id uint32) bool { return id != 4 })
	for _, r := range idx.Search([]float32{2, 0.2, 0}, 2, inStock, nil) {
		fmt.Printf("%d %.3f\n", r.ID, r.Score)
	}
	// Output:
	// 0 0.995
	// 2 0.100
}
