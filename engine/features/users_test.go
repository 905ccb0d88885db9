package features

import (
	"fmt"
	"sync"
	"testing"
)

func TestUserStorePutGet(t *testing.T) {
	s := NewUserStore(MinKVBytes)
	requireNoError(t, s.PutUser(7, []int{2, 0, 300}, []float32{20, 0.5, 3}, []float32{0.1, 0.2}), "PutUser 7")
	requireNoError(t, s.PutUser(8, []int{1}, []float32{11}, nil), "PutUser 8")

	var r UserRow
	requireEqual(t, s.GetUser(7, &r), true, "GetUser 7")
	requireEqual(t, r.Cols, []int{2, 0, 300}, "Cols")
	requireSameFloats(t, r.Vals, []float32{20, 0.5, 3}, "Vals")
	requireSameFloats(t, r.Emb, []float32{0.1, 0.2}, "Emb")
	v, ok := r.Value(300)
	requireEqual(t, ok && v == 3, true, "Value(300)")
	_, ok = r.Value(1)
	requireEqual(t, ok, false, "Value(1)")

	// Reusing the row for a smaller user leaves nothing of the bigger one behind.
	requireEqual(t, s.GetUser(8, &r), true, "GetUser 8")
	requireEqual(t, r.Cols, []int{1}, "Cols 8")
	requireEqual(t, len(r.Emb), 0, "no embedding for 8")

	requireEqual(t, s.GetUser(9, &r), false, "GetUser unknown")
	requireEqual(t, len(r.Cols)+len(r.Emb), 0, "row empty after miss")

	// Replace, then delete.
	requireNoError(t, s.PutUser(7, []int{2}, []float32{21}, nil), "PutUser 7 again")
	requireEqual(t, s.GetUser(7, &r), true, "GetUser 7 again")
	requireSameFloats(t, r.Vals, []float32{21}, "replaced Vals")
	requireEqual(t, len(r.Emb), 0, "replaced Emb")
	s.DeleteUser(7)
	requireEqual(t, s.GetUser(7, &r), false, "GetUser after delete")
	requireEqual(t, s.Stats().Entries, uint64(1), "Entries")
}

func TestUserStoreErrors(t *testing.T) {
	s := NewUserStore(MinKVBytes)
	requireErrorIs(t, s.PutUser(1, []int{1, 2}, []float32{1}, nil), ErrLengthMismatch, "mismatch")
	requireErrorIs(t, s.PutUser(1, []int{1, 2, 1}, []float32{1, 2, 3}, nil), ErrDuplicateColumn, "duplicate")
	requireErrorIs(t, s.PutUser(1, nil, nil, make([]float32, 16381)), ErrTooLarge, "embedding too big")
	requireNoError(t, s.PutUser(1, nil, nil, make([]float32, 16380)), "largest embedding")
	var r UserRow
	requireEqual(t, s.GetUser(1, &r) && len(r.Emb) == 16380, true, "largest embedding reads back")
	requirePanics(t, func() { _ = s.PutUser(1, []int{MaxColumns}, []float32{1}, nil) }, "column too large")
	requirePanics(t, func() { _ = s.PutUser(1, []int{-1}, []float32{1}, nil) }, "negative column")
	// A corrupt entry under a user key reads as not found.
	k := userKey(2)
	requireNoError(t, s.kv.Set(k[:], []byte{hdrUserRow1, 5}), "Set corrupt")
	requireEqual(t, s.GetUser(2, &r), false, "GetUser corrupt")
	requireEqual(t, len(r.Cols), 0, "row empty after corrupt")
}

func TestUserRowGather(t *testing.T) {
	narrow := UserRow{Cols: []int{4, 1, 7}, Vals: []float32{40, 10, 70}}
	wideCols := make([]int, 100)
	wideVals := make([]float32, 100)
	for i := range wideCols {
		wideCols[i] = 3 * i
		wideVals[i] = float32(i)
	}
	wide := UserRow{Cols: wideCols, Vals: wideVals}
	wideQuery := make([]int, 20)
	wantWide := make([]float32, 20)
	for f := range wideQuery {
		wideQuery[f] = f * 10 // multiples of 3 are present
		wantWide[f] = nan
		if f*10%3 == 0 {
			wantWide[f] = float32(f * 10 / 3)
		}
	}
	wideQuery = append(wideQuery, 5000, -1)
	wantWide = append(wantWide, nan, nan)

	tests := []struct {
		name string
		row  *UserRow
		cols []int
		want []float32
	}{
		{"narrow", &narrow, []int{1, 4, 2}, []float32{10, 40, nan}},
		{"narrow, row order", &narrow, []int{4, 1, 7}, []float32{40, 10, 70}},
		{"narrow, reversed", &narrow, []int{7, 1, 4, 7}, []float32{70, 10, 40, 70}},
		{"narrow, no cols", &narrow, nil, []float32{}},
		{"empty row", &UserRow{}, []int{0, 1}, []float32{nan, nan}},
		{"wide uses index", &wide, wideQuery, wantWide},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requireSameFloats(t, tt.row.Gather(tt.cols, nil), tt.want, "Gather")
			buf := make([]float32, 0, len(tt.want)+1)
			got := tt.row.Gather(tt.cols, buf)
			requireSameFloats(t, got, tt.want, "Gather reused")
			if len(got) > 0 && &got[0] != &buf[:1][0] {
				t.Fatal("Gather did not reuse dst")
			}
		})
	}
	s := NewUserStore(MinKVBytes)
	requireNoError(t, s.PutUser(3, []int{1}, []float32{5}, nil), "PutUser")
	var r UserRow
	got, ok := s.Gather(3, []int{1, 2}, &r, nil)
	requireEqual(t, ok, true, "UserStore.Gather found")
	requireSameFloats(t, got, []float32{5, nan}, "UserStore.Gather")
	got, ok = s.Gather(4, []int{1}, &r, got)
	requireEqual(t, ok, false, "UserStore.Gather unknown")
	requireSameFloats(t, got, []float32{nan}, "UserStore.Gather unknown")
}

// TestUserStoreHammer replaces user rows while readers decode them under -race. Each row a
// writer puts is self-consistent (every value and embedding element equals its generation),
// so a reader seeing mixed values would mean a torn entry.
func TestUserStoreHammer(t *testing.T) {
	s := NewUserStore(MinKVBytes)
	const users, gens = 50, 40
	cols := []int{0, 1, 2, 3}
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			vals := make([]float32, len(cols))
			emb := make([]float32, 8)
			for g := 0; g < gens; g++ {
				for i := range vals {
					vals[i] = float32(g)
				}
				for i := range emb {
					emb[i] = float32(g)
				}
				for u := uint32(w); u < users; u += 2 {
					if err := s.PutUser(u, cols, vals, emb); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var row UserRow
			for n := 0; n < users*gens; n++ {
				if !s.GetUser(uint32(n%users), &row) {
					continue
				}
				if len(row.Vals) != len(cols) || len(row.Emb) != 8 {
					t.Errorf("user %d: %d values, %d-d embedding", n%users, len(row.Vals), len(row.Emb))
					return
				}
				for _, x := range append(row.Vals, row.Emb...) {
					if x != row.Vals[0] {
						t.Errorf("user %d: torn row %v %v", n%users, row.Vals, row.Emb)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	var row UserRow
	for u := uint32(0); u < users; u++ {
		requireEqual(t, s.GetUser(u, &row), true, fmt.Sprint("final user ", u))
		requireSameFloats(t, row.Vals, []float32{gens - 1, gens - 1, gens - 1, gens - 1}, fmt.Sprint("final user ", u))
	}
}
