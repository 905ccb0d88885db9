//go:build !race

package features

import (
	"math/rand/v2"
	"testing"
)

// TestItemStoreGatherAllocs proves the request path allocates nothing: gathering 1000
// random items × 32 features into a dst with enough capacity.
func TestItemStoreGatherAllocs(t *testing.T) {
	const items, nItems, nCols = 20000, 1000, 32
	s := NewItemStore(64, 0)
	cols := make([]int, nCols)
	for f := range cols {
		cols[f] = f * 2 // spread over all four groups
	}
	vals := make([]float32, nCols)
	for id := uint32(0); id < items; id++ {
		for f := range vals {
			vals[f] = float32(id) + float32(f)
		}
		if err := s.SetRow(id, cols, vals); err != nil {
			t.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	ids := make([]uint32, nItems)
	for i := range ids {
		ids[i] = uint32(rng.IntN(items))
	}
	dst := make([]float32, 0, nItems*nCols)
	allocs := testing.AllocsPerRun(100, func() {
		dst = s.Gather(ids, cols, dst[:0])
	})
	if allocs != 0 {
		t.Fatalf("Gather: %v allocations per run, want 0", allocs)
	}
	if got, want := dst[5*nItems+7], float32(ids[7])+5; got != want {
		t.Fatalf("Gather result: got %v, want %v", got, want)
	}
}

// TestUserStoreGetAllocs proves reading a user (32 features + 64-d embedding) into a
// reused row, and gathering its features, allocates nothing once the row has grown.
func TestUserStoreGetAllocs(t *testing.T) {
	s := NewUserStore(MinKVBytes)
	cols := make([]int, 32)
	vals := make([]float32, 32)
	for i := range cols {
		cols[i], vals[i] = i, float32(i)
	}
	emb := make([]float32, 64)
	for u := uint32(0); u < 100; u++ {
		if err := s.PutUser(u, cols, vals, emb); err != nil {
			t.Fatal(err)
		}
	}
	var row UserRow
	s.GetUser(1, &row) // grow the row once
	dst := make([]float32, 0, len(cols))
	u := uint32(0)
	allocs := testing.AllocsPerRun(200, func() {
		u = (u + 1) % 100
		if !s.GetUser(u, &row) {
			t.Fatal("user missing")
		}
		dst = row.Gather(cols, dst)
	})
	if allocs != 0 {
		t.Fatalf("GetUser+Gather: %v allocations per run, want 0", allocs)
	}
	if dst[31] != 31 || len(row.Emb) != 64 {
		t.Fatalf("wrong row: %v, %d-d embedding", dst, len(row.Emb))
	}
	allocs = testing.AllocsPerRun(200, func() {
		if err := s.PutUser(u, cols, vals, emb); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("PutUser: %v allocations per run, want 0", allocs)
	}
}

// TestKVFloat32sAllocs proves the typed KV helpers allocate nothing with a reused dst.
func TestKVFloat32sAllocs(t *testing.T) {
	kv := NewKV(MinKVBytes)
	key := []byte("session:42")
	v := make([]float32, 128)
	v[127] = 7
	if err := kv.PutFloat32s(key, v); err != nil {
		t.Fatal(err)
	}
	dst := make([]float32, 0, 128)
	var ok bool
	allocs := testing.AllocsPerRun(200, func() {
		if err := kv.PutFloat32s(key, v); err != nil {
			t.Fatal(err)
		}
		dst, ok = kv.GetFloat32s(key, dst)
	})
	if allocs != 0 {
		t.Fatalf("PutFloat32s+GetFloat32s: %v allocations per run, want 0", allocs)
	}
	if !ok || dst[127] != 7 {
		t.Fatalf("GetFloat32s: %v %v", ok, dst[127])
	}
}
