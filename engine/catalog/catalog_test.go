package catalog

import (
	"errors"
	"github.com/podium-rank/podium/engine/features"
	"strings"
	"sync"
	"testing"
)

func TestUpsertAndRead(t *testing.T) {
	c := New(Config{Dim: 3})
	id, err := c.Upsert(&Item{ID: "i1", Embedding: []float32{1, 2, 3}, InStock: true,
		Attributes: []Attribute{{"category", "shoes"}, {"brand", "acme"}}})
	if err != nil {
		t.Fatal(err)
	}
	if id != 0 || !c.Live(id) || !c.Available(id) || !c.HasEmbedding(id) {
		t.Fatalf("item 0 state wrong: live=%v avail=%v", c.Live(id), c.Available(id))
	}
	if got := c.Embedding(id, nil); got[0] != 1 || got[2] != 3 {
		t.Fatalf("embedding = %v", got)
	}
	ai, ok := c.AttributeIndex("brand")
	if !ok || c.AttributeValue(ai, id) != "acme" {
		t.Fatalf("brand = %q", c.AttributeValue(ai, id))
	}
	// Upsert keeps the dense id and updates availability from stock.
	id2, err := c.Upsert(&Item{ID: "i1", HasStock: true, Stock: 0})
	if err != nil || id2 != id {
		t.Fatalf("re-upsert: id %d err %v", id2, err)
	}
	if c.Available(id) {
		t.Fatal("stock 0 must make the item unavailable")
	}
	if got := c.Embedding(id, nil); got[1] != 2 {
		t.Fatal("an upsert without an embedding must keep the old one")
	}
	if err := c.SetStock(id, 4); err != nil || !c.Available(id) {
		t.Fatalf("SetStock: %v avail=%v", err, c.Available(id))
	}
	if _, err := c.Delete("i1"); err != nil || c.Live(id) || c.LiveItems() != 0 {
		t.Fatalf("delete: %v", err)
	}
	if _, err := c.Delete("i1"); !errors.Is(err, ErrUnknownItem) {
		t.Fatalf("second delete: %v", err)
	}
}

func TestValidate(t *testing.T) {
	c := New(Config{Dim: 2})
	f := func(it Item, want error) {
		t.Helper()
		_, err := c.Upsert(&it)
		if !errors.Is(err, want) {
			t.Fatalf("Upsert(%+v) = %v, want %v", it, err, want)
		}
	}
	f(Item{ID: ""}, ErrEmptyID)
	f(Item{ID: "a", Embedding: []float32{1}}, ErrDimension)
	nan := float32(0)
	nan = nan / nan
	f(Item{ID: "a", Embedding: []float32{1, nan}}, ErrNotFinite)
	f(Item{ID: "a", Features: []Feature{{"p", nan}}}, ErrNotFinite)
	f(Item{ID: "a", Embedding: []float32{1, 2}}, nil)
}

func TestTooManyAttributes(t *testing.T) {
	c := New(Config{Dim: 0})
	attrs := make([]Attribute, MaxAttributes+1)
	for i := range attrs {
		attrs[i] = Attribute{Name: strings.Repeat("a", i+1), Value: "x"}
	}
	if _, err := c.Upsert(&Item{ID: "x", Attributes: attrs}); !errors.Is(err, ErrTooManyAttrs) {
		t.Fatalf("err = %v", err)
	}
}

func TestConcurrentReadWrite(t *testing.T) {
	c := New(Config{Dim: 4})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []float32
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := c.ItemCap()
				for id := uint32(0); id < uint32(n); id++ {
					buf = c.Embedding(id, buf[:0])
					_ = c.Available(id)
					_ = c.ItemName(id)
					if ai, ok := c.AttributeIndex("category"); ok {
						_ = c.AttributeValue(ai, id)
					}
				}
			}
		}()
	}
	for i := 0; i < 3*chunkSize; i++ {
		it := Item{ID: "i" + itoa(i), Embedding: []float32{1, 2, 3, float32(i)}, InStock: i%2 == 0,
			Attributes: []Attribute{{"category", "c" + itoa(i%7)}}}
		if _, err := c.Upsert(&it); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if c.LiveItems() != 3*chunkSize {
		t.Fatalf("live = %d", c.LiveItems())
	}
	id, _ := c.Items().Lookup("i5000")
	if got := c.Embedding(id, nil); got[3] != 5000 {
		t.Fatalf("embedding of i5000 = %v", got)
	}
}

func itoa(i int) string {
	var b [20]byte
	n := len(b)
	for {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			return string(b[n:])
		}
	}
}

func TestFeaturesAndUsers(t *testing.T) {
	c := New(Config{Dim: 2})
	id, err := c.Upsert(&Item{ID: "i1", InStock: true, Features: []Feature{{"price", 9.5}, {"popularity", 0.25}}})
	if err != nil {
		t.Fatal(err)
	}
	col, ok := c.FeatureColumn("price")
	if !ok || c.ItemFeature(id, col) != 9.5 {
		t.Fatalf("price col %d ok %v", col, ok)
	}
	pc, _ := c.FeatureColumn("popularity")
	got := c.GatherFeatures([]uint32{id, 7}, []int{col, pc}, nil)
	if got[0] != 9.5 || got[2] != 0.25 || got[1] == got[1] {
		t.Fatalf("gather = %v (want price, NaN, popularity, NaN)", got)
	}
	if err := c.SetItemFeature(id, "price", 3); err != nil || c.ItemFeature(id, col) != 3 {
		t.Fatalf("SetItemFeature: %v", err)
	}
	uid, err := c.UpsertUser(&User{ID: "u1", Embedding: []float32{1, 0}, Features: []Feature{{"age", 31}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpsertUser(&User{ID: "u2", Embedding: []float32{1}}); !errors.Is(err, ErrDimension) {
		t.Fatalf("bad user dim: %v", err)
	}
	var row features.UserRow
	if !c.User(uid, &row) || len(row.Emb) != 2 || row.Vals[0] != 31 {
		t.Fatalf("user row %+v", row)
	}
}
