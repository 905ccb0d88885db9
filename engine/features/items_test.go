package features

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

func TestItemStoreSetGet(t *testing.T) {
	s := NewItemStore(40, 0)
	// Writes, then reads, then the value each read must see.
	writes := []struct {
		id  uint32
		col int
		v   float32
	}{
		{0, 0, 1.5},
		{0, 39, -2},     // last column, third group
		{1023, 15, 3},   // last item of chunk 0, last column of group 0
		{1024, 16, 4},   // first item of chunk 1, first column of group 1
		{5000, 3, 0},    // zero is a value, not missing
		{7, 7, 8},       //
		{7, 7, 9},       // overwrite
		{9, 1, nan},     // storing NaN is the same as never storing
		{70000, 20, 11}, // far ahead: directory grows past many chunks
	}
	for _, w := range writes {
		requireNoError(t, s.Set(w.id, w.col, w.v), fmt.Sprintf("Set(%d,%d)", w.id, w.col))
	}
	reads := []struct {
		id   uint32
		col  int
		want float32
	}{
		{0, 0, 1.5},
		{0, 39, -2},
		{0, 1, nan}, // same group, other column
		{1023, 15, 3},
		{1022, 15, nan}, // neighbour item
		{1024, 16, 4},
		{1024, 15, nan}, // group 0 of chunk 1 never allocated
		{5000, 3, 0},
		{7, 7, 9},
		{9, 1, nan},
		{70000, 20, 11},
		{69999, 20, nan},
		{1 << 20, 0, nan}, // beyond the directory
	}
	for _, r := range reads {
		requireSameFloat(t, s.Get(r.id, r.col), r.want, fmt.Sprintf("Get(%d,%d)", r.id, r.col))
	}
}

func TestItemStoreGather(t *testing.T) {
	s := NewItemStore(64, 0)
	requireNoError(t, s.SetRow(1, []int{0, 1, 33}, []float32{10, 11, 133}), "SetRow 1")
	requireNoError(t, s.SetRow(2000, []int{1, 33}, []float32{21, 2033}), "SetRow 2000")
	requireNoError(t, s.Set(3, 0, 30), "Set 3")

	tests := []struct {
		name string
		ids  []uint32
		cols []int
		want []float32 // column-major
	}{
		{"empty ids", nil, []int{0, 1}, []float32{}},
		{"empty cols", []uint32{1, 2}, nil, []float32{}},
		{"one item", []uint32{1}, []int{0, 1, 33}, []float32{10, 11, 133}},
		{"column-major", []uint32{1, 2000, 3}, []int{33, 0},
			[]float32{133, 2033, nan, 10, nan, 30}},
		{"unknown and far ids", []uint32{999999, 1, 2}, []int{1},
			[]float32{nan, 11, nan}},
		{"repeated ids and cols", []uint32{1, 1}, []int{1, 1}, []float32{11, 11, 11, 11}},
		{"untouched group", []uint32{1, 3}, []int{63}, []float32{nan, nan}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := s.Gather(tt.ids, tt.cols, nil)
			requireSameFloats(t, got, tt.want, "Gather into nil")
			// Reuse a dirty buffer with spare capacity: same result, same backing array.
			buf := make([]float32, 3, len(tt.want)+5)
			for i := range buf[:cap(buf)] {
				buf[:cap(buf)][i] = -7
			}
			got = s.Gather(tt.ids, tt.cols, buf)
			requireSameFloats(t, got, tt.want, "Gather into reused buffer")
			if len(tt.want) > 0 && &got[0] != &buf[:1][0] {
				t.Fatalf("Gather did not reuse dst with enough capacity")
			}
		})
	}
}

func TestItemStoreGrowthAcrossChunks(t *testing.T) {
	s := NewItemStore(32, 0)
	const n = 5*chunkItems + 3
	val := func(id uint32, col int) float32 { return float32(id)*32 + float32(col) }
	cols := []int{0, 17, 31}
	for id := uint32(0); id < n; id++ {
		for _, c := range cols {
			requireNoError(t, s.Set(id, c, val(id, c)), "Set")
		}
		// Every earlier item must still read back after each growth step.
		if id%chunkItems == 0 {
			for old := uint32(0); old <= id; old += 97 {
				requireSameFloat(t, s.Get(old, 17), val(old, 17), fmt.Sprintf("Get(%d) after growth to %d", old, id))
			}
		}
	}
	ids := make([]uint32, 0, n)
	for id := uint32(n); id > 0; id-- {
		ids = append(ids, id-1)
	}
	got := s.Gather(ids, cols, nil)
	for f, c := range cols {
		for i, id := range ids {
			requireSameFloat(t, got[f*len(ids)+i], val(id, c), fmt.Sprintf("Gather item %d col %d", id, c))
		}
	}
	// Six chunks, two groups each (columns 0-15 and 16-31).
	requireEqual(t, s.SizeBytes(), int64(6*2*blockBytes), "SizeBytes")
}

func TestItemStoreErrors(t *testing.T) {
	s := NewItemStore(8, 2048)
	requireErrorIs(t, s.Set(2048, 0, 1), ErrIDOutOfRange, "Set at limit")
	requireErrorIs(t, s.SetRow(math.MaxUint32, []int{0}, []float32{1}), ErrIDOutOfRange, "SetRow far out")
	requireErrorIs(t, s.SetRow(1, []int{0, 1}, []float32{1}), ErrLengthMismatch, "SetRow mismatch")
	requireSameFloat(t, s.Get(1, 0), nan, "nothing stored by the failed SetRow")
	requireNoError(t, s.Set(2047, 7, 1), "Set just below limit")

	requirePanics(t, func() { _ = s.Set(0, 8, 1) }, "Set col = maxCols")
	requirePanics(t, func() { _ = s.Set(0, -1, 1) }, "Set negative col")
	requirePanics(t, func() { s.Get(0, 8) }, "Get col = maxCols")
	requirePanics(t, func() { s.Gather([]uint32{0}, []int{0, 9}, nil) }, "Gather bad col")
	requirePanics(t, func() { _ = s.SetRow(0, []int{9}, []float32{1}) }, "SetRow bad col")
	requirePanics(t, func() { NewItemStore(0, 0) }, "NewItemStore(0)")
}

func TestItemStoreClear(t *testing.T) {
	s := NewItemStore(48, 0)
	requireNoError(t, s.SetRow(5, []int{0, 20, 40}, []float32{1, 2, 3}), "SetRow 5")
	requireNoError(t, s.SetRow(6, []int{0, 20, 40}, []float32{4, 5, 6}), "SetRow 6")
	s.Clear(5)
	s.Clear(1 << 30) // beyond the directory: no-op
	requireSameFloats(t, s.Gather([]uint32{5, 6}, []int{0, 20, 40}, nil),
		[]float32{nan, 4, nan, 5, nan, 6}, "after Clear(5)")
}

// TestItemStoreHammer runs writers that grow the store and overwrite rows while readers
// gather, under -race. Every value a reader sees must be NaN or one a writer stored for
// exactly that (item, column): value = id*64 + col + 0.5*gen, gen in {0, 1}.
func TestItemStoreHammer(t *testing.T) {
	const (
		maxCols = 64
		items   = 4 * chunkItems
	)
	rounds := 3
	if testing.Short() {
		rounds = 1
	}
	s := NewItemStore(maxCols, 0)
	cols := []int{0, 5, 16, 31, 47, 63}
	valid := func(id uint32, col int, v float32) bool {
		if isNaN(v) {
			return true
		}
		base := float32(id)*64 + float32(col)
		return v == base || v == base+0.5
	}
	var done atomic.Bool
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			vals := make([]float32, len(cols))
			for r := 0; r < rounds; r++ {
				gen := float32((r + w) % 2)
				for id := uint32(w); id < items; id += 2 {
					for k, c := range cols {
						vals[k] = float32(id)*64 + float32(c) + 0.5*gen
					}
					if err := s.SetRow(id, cols, vals); err != nil {
						t.Error(err)
						return
					}
					if id%512 == 0 {
						s.Clear(id)
					}
				}
			}
		}()
	}
	var rw sync.WaitGroup
	for r := 0; r < 3; r++ {
		rw.Add(1)
		go func() {
			defer rw.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 1))
			ids := make([]uint32, 200)
			var dst []float32
			for !done.Load() {
				for i := range ids {
					ids[i] = uint32(rng.IntN(items + chunkItems)) // some beyond the writers
				}
				dst = s.Gather(ids, cols, dst)
				for f, c := range cols {
					for i, id := range ids {
						if v := dst[f*len(ids)+i]; !valid(id, c, v) {
							t.Errorf("item %d col %d: read %v, never written", id, c, v)
							return
						}
					}
				}
				if v := s.Get(ids[0], cols[1]); !valid(ids[0], cols[1], v) {
					t.Errorf("Get item %d: read %v, never written", ids[0], v)
					return
				}
			}
		}()
	}
	wg.Wait()
	done.Store(true)
	rw.Wait()
	// After the writers stop, every item written in the last round reads its final value.
	for id := uint32(0); id < items; id++ {
		if id%512 == 0 {
			continue // may have been cleared in the last round
		}
		w := int(id % 2)
		gen := float32((rounds - 1 + w) % 2)
		requireSameFloat(t, s.Get(id, 47), float32(id)*64+47+0.5*gen, fmt.Sprintf("final item %d", id))
	}
}
