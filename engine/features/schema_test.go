package features

import (
	"fmt"
	"sync"
	"testing"
)

func TestSchemaIntern(t *testing.T) {
	s := NewSchema(3)
	steps := []struct {
		name    string
		want    int
		wantErr error
	}{
		{"price", 0, nil},
		{"ctr", 1, nil},
		{"price", 0, nil},
		{"", 0, ErrEmptyName},
		{"stock", 2, nil},
		{"brand", 0, ErrSchemaFull},
		{"ctr", 1, nil}, // existing names still resolve when full
	}
	for _, st := range steps {
		got, err := s.Intern(st.name)
		if st.wantErr != nil {
			requireErrorIs(t, err, st.wantErr, "Intern("+st.name+")")
			continue
		}
		requireNoError(t, err, "Intern("+st.name+")")
		requireEqual(t, got, st.want, "Intern("+st.name+")")
	}
	requireEqual(t, s.Names(), []string{"price", "ctr", "stock"}, "Names")
	requireEqual(t, s.Len(), 3, "Len")
	id, ok := s.Lookup("stock")
	requireEqual(t, ok, true, "Lookup(stock) ok")
	requireEqual(t, id, 2, "Lookup(stock)")
	_, ok = s.Lookup("brand")
	requireEqual(t, ok, false, "Lookup(brand) ok")
	name, ok := s.Name(1)
	requireEqual(t, ok, true, "Name(1) ok")
	requireEqual(t, name, "ctr", "Name(1)")
	_, ok = s.Name(3)
	requireEqual(t, ok, false, "Name(3) ok")
	_, ok = s.Name(-1)
	requireEqual(t, ok, false, "Name(-1) ok")
}

func TestSchemaNamesIsACopy(t *testing.T) {
	s := NewSchema(4)
	_, _ = s.Intern("a")
	names := s.Names()
	names[0] = "mutated"
	requireEqual(t, s.Names(), []string{"a"}, "Names after caller mutation")
}

func TestNewSchemaPanicsOnBadLimit(t *testing.T) {
	requirePanics(t, func() { NewSchema(0) }, "NewSchema(0)")
	requirePanics(t, func() { NewSchema(MaxColumns + 1) }, "NewSchema(MaxColumns+1)")
}

// TestSchemaHammer interns overlapping names from many goroutines while others look them
// up, then checks that ids are dense, unique and agree with Lookup and Names.
func TestSchemaHammer(t *testing.T) {
	const (
		writers = 8
		names   = 200
	)
	s := NewSchema(names)
	got := make([][]int, writers)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ns := s.Names()
				for i, n := range ns {
					if id, ok := s.Lookup(n); !ok || id != i {
						t.Errorf("Lookup(%q) = %d, %v; Names says %d", n, id, ok, i)
						return
					}
				}
			}
		}()
	}
	var ww sync.WaitGroup
	for w := 0; w < writers; w++ {
		ww.Add(1)
		go func() {
			defer ww.Done()
			ids := make([]int, names)
			for i := 0; i < names; i++ {
				k := (i*7 + w*13) % names // each writer in its own order
				id, err := s.Intern(fmt.Sprintf("f%d", k))
				if err != nil {
					t.Errorf("Intern: %v", err)
					return
				}
				ids[k] = id
			}
			got[w] = ids
		}()
	}
	ww.Wait()
	close(stop)
	wg.Wait()
	requireEqual(t, s.Len(), names, "Len")
	seen := make(map[int]bool)
	for k := 0; k < names; k++ {
		id := got[0][k]
		for w := 1; w < writers; w++ {
			requireEqual(t, got[w][k], id, fmt.Sprintf("writer %d id of f%d", w, k))
		}
		if seen[id] || id < 0 || id >= names {
			t.Fatalf("id %d of f%d duplicate or out of range", id, k)
		}
		seen[id] = true
		requireEqual(t, s.Names()[id], fmt.Sprintf("f%d", k), "Names[id]")
	}
}
