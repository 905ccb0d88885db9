package catalog

import (
	"strings"
	"testing"
)

func TestReadItemsReportsBadLines(t *testing.T) {
	c := New(Config{Dim: 2})
	in := strings.Join([]string{
		`{"id":"i1","embedding":[1,2],"features":{"price":3.5},"attributes":{"category":"shoes","year":2020},"stock":3}`,
		`{"id":"","embedding":[1,2]}`,
		`{"id":"i2","embedding":[1,2,3]}`,
		`not json`,
		``,
		`{"id":"i1","embedding":[1,2]}`,
		`{"id":"i3","embedding":[1,1e999]}`,
		`{"id":"i4","stock":1.5}`,
		`{"id":"i5","in_stock":false}`,
	}, "\n")
	rep, err := ReadItems(strings.NewReader(in), c.Validate, func(it *Item) error {
		_, err := c.Upsert(it)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Accepted != 2 || rep.Failed != 6 {
		t.Fatalf("report = %+v", rep)
	}
	wantLines := []int{2, 3, 4, 6, 7, 8}
	for i, e := range rep.Errors {
		if e.Line != wantLines[i] {
			t.Fatalf("error %d on line %d, want %d: %+v", i, e.Line, wantLines[i], rep.Errors)
		}
	}
	for _, want := range []string{"id is empty", "dimension", "invalid JSON", "duplicate id \"i1\" in this batch (first on line 1)", "at index 26", "whole number"} {
		found := false
		for _, e := range rep.Errors {
			found = found || strings.Contains(e.Error, want)
		}
		if !found {
			t.Errorf("no error mentions %q: %+v", want, rep.Errors)
		}
	}
	id, _ := c.Items().Lookup("i1")
	if s, ok := c.Stock(id); !ok || s != 3 || !c.Available(id) {
		t.Fatalf("i1 stock %d %v", s, ok)
	}
	ai, _ := c.AttributeIndex("year")
	if c.AttributeValue(ai, id) != "2020" {
		t.Fatal("numeric attribute not stored as text")
	}
	id5, _ := c.Items().Lookup("i5")
	if c.Available(id5) {
		t.Fatal("in_stock:false ignored")
	}
}

func TestReadLongLine(t *testing.T) {
	in := `{"id":"a"}` + "\n" + `{"id":"` + strings.Repeat("x", MaxLineBytes) + `"}` + "\n" + `{"id":"b"}`
	var got []string
	rep, err := ReadItems(strings.NewReader(in), nil, func(it *Item) error { got = append(got, it.ID); return nil })
	if err != nil || rep.Accepted != 2 || rep.Failed != 1 || rep.Errors[0].Line != 2 {
		t.Fatalf("rep %+v err %v", rep, err)
	}
	if strings.Join(got, ",") != "a,b" {
		t.Fatalf("applied %v", got)
	}
}

func TestReadUsers(t *testing.T) {
	in := `{"id":"u1","embedding":[1,2],"features":{"age":30}}` + "\n" + `{"id":"u2","features":{"": 1}}` + "\n" + `{"embedding":[1]}`
	var got []User
	rep, err := ReadUsers(strings.NewReader(in), nil, func(u *User) error { got = append(got, *u); return nil })
	if err != nil || rep.Accepted != 1 || rep.Failed != 2 {
		t.Fatalf("rep %+v err %v", rep, err)
	}
	if got[0].ID != "u1" || len(got[0].Embedding) != 2 || got[0].Features[0].Name != "age" {
		t.Fatalf("got %+v", got)
	}
}

func FuzzReadItems(f *testing.F) {
	f.Add([]byte(`{"id":"i1","embedding":[1,2],"features":{"price":3.5},"attributes":{"c":"s"},"stock":3}`))
	f.Add([]byte("{\"id\":\"a\"}\n{\"id\":\"a\"}\n\n{"))
	f.Add([]byte(`{"id":"x","attributes":{"a":[1]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := New(Config{Dim: 2})
		lines := strings.Count(string(data), "\n") + 1
		rep, err := ReadItems(strings.NewReader(string(data)), c.Validate, func(it *Item) error {
			_, err := c.Upsert(it)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Accepted+rep.Failed > lines {
			t.Fatalf("%d results for %d lines", rep.Accepted+rep.Failed, lines)
		}
		if c.LiveItems() != rep.Accepted {
			t.Fatalf("live %d accepted %d", c.LiveItems(), rep.Accepted)
		}
	})
}
