package demo

import (
	"bytes"
	"testing"

	"github.com/podium-rank/podium/engine/catalog"
)

func small() Config {
	cfg := DefaultConfig()
	cfg.Items, cfg.Users, cfg.Clusters = 2000, 100, 50
	return cfg
}

func TestGenerateIsDeterministicAndComplete(t *testing.T) {
	a, b := Generate(small()), Generate(small())
	if len(a.Items) != 2000 || len(a.Users) != 100 {
		t.Fatalf("sizes %d %d", len(a.Items), len(a.Users))
	}
	for i := range a.Items {
		if a.Items[i].ID != b.Items[i].ID || a.Items[i].Embedding[3] != b.Items[i].Embedding[3] ||
			a.Items[i].Features[1].Value != b.Items[i].Features[1].Value {
			t.Fatalf("item %d differs between runs", i)
		}
		if len(a.Items[i].Features) != 32 {
			t.Fatalf("item %d has %d features", i, len(a.Items[i].Features))
		}
	}
	if a.Items[17].ID != "i17" || a.Users[9].ID != "u9" {
		t.Fatal("ids must be i<n> and u<n>")
	}
	// Popularity has a long tail: the top 1% of items hold far more than 1% of it.
	pops := make([]float64, len(a.Items))
	var total float64
	for i, it := range a.Items {
		pops[i] = float64(it.Features[1].Value)
		total += pops[i]
	}
	top := 0.0
	for _, p := range topN(pops, 20) {
		top += p
	}
	if top/total < 0.05 {
		t.Fatalf("top 1%% hold %.3f of popularity; want a long tail", top/total)
	}
}

func topN(v []float64, n int) []float64 {
	out := make([]float64, 0, n)
	used := make([]bool, len(v))
	for len(out) < n {
		best := -1
		for i, x := range v {
			if !used[i] && (best < 0 || x > v[best]) {
				best = i
			}
		}
		used[best] = true
		out = append(out, v[best])
	}
	return out
}

func TestNDJSONRoundTrip(t *testing.T) {
	d := Generate(small())
	var buf bytes.Buffer
	if err := d.WriteItemsNDJSON(&buf); err != nil {
		t.Fatal(err)
	}
	c := catalog.New(catalog.Config{Dim: d.Config.Dim})
	rep, err := catalog.ReadItems(&buf, c.Validate, func(it *catalog.Item) error { _, err := c.Upsert(it); return err })
	if err != nil || rep.Accepted != len(d.Items) || rep.Failed != 0 {
		t.Fatalf("items: %+v %v", rep, err)
	}
	buf.Reset()
	if err := d.WriteUsersNDJSON(&buf); err != nil {
		t.Fatal(err)
	}
	rep, err = catalog.ReadUsers(&buf, c.ValidateUser, func(u *catalog.User) error { _, err := c.UpsertUser(u); return err })
	if err != nil || rep.Accepted != len(d.Users) {
		t.Fatalf("users: %+v %v", rep, err)
	}
	id, _ := c.Items().Lookup("i5")
	if got := c.Embedding(id, nil); got[0] != d.Items[5].Embedding[0] {
		t.Fatal("embedding changed in the round trip")
	}
}
