package features_test

import (
	"fmt"

	"github.com/podium-rank/podium/engine/features"
)

func Example() {
	schema := features.NewSchema(64)
	price, _ := schema.Intern("price")
	ctr, _ := schema.Intern("ctr")

	items := features.NewItemStore(schema.MaxCols(), 0)
	_ = items.SetRow(0, []int{price, ctr}, []float32{9.5, 0.25})
	_ = items.Set(1, price, 3)

	// A request gathers the columns its plugin asked for, column-major, reusing dst.
	dst := make([]float32, 0, 3*2)
	dst = items.Gather([]uint32{1, 0, 7}, []int{price, ctr}, dst)
	fmt.Println("price:", dst[0:3])
	fmt.Println("ctr:  ", dst[3:6])

	users := features.NewUserStore(features.MinKVBytes)
	_ = users.PutUser(42, []int{ctr}, []float32{0.5}, []float32{0.1, 0.2})
	var row features.UserRow // reuse one per goroutine
	vals, ok := users.Gather(42, []int{ctr, price}, &row, nil)
	fmt.Println("user:", ok, vals, row.Emb)
	// Output:
	// price: [3 9.5 NaN]
	// ctr:   [NaN 0.25 NaN]
	// user: true [0.5 NaN] [0.1 0.2]
}

func ExampleKV() {
	kv := features.NewKV(features.MinKVBytes)
	key := []byte("session:7")
	_ = kv.PutFloat32s(key, []float32{1, 0, 2})
	dst := make([]float32, 0, 8) // reused across calls: no allocation
	dst, ok := kv.GetFloat32s(key, dst)
	fmt.Println(ok, dst)
	_, ok = kv.GetUint64s(key, nil) // a float32 vector is not a uint64 vector
	fmt.Println(ok)
	// Output:
	// true [1 0 2]
	// false
}
