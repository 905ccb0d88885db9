package engine

import (
	"errors"
	"testing"

	"github.com/podium-rank/podium/engine/ann"
	"github.com/podium-rank/podium/engine/demo"
	"github.com/podium-rank/podium/engine/pipeline"
	"github.com/podium-rank/podium/engine/retrieval"
)

var retrievalSmall = retrieval.Config{ANN: 200, Popular: 20}

func smallEngine(t testing.TB) *Engine {
	t.Helper()
	dc := demo.DefaultConfig()
	dc.Items, dc.Users, dc.Clusters, dc.Dim = 2000, 100, 40, 16
	e, err := New(Config{Dim: dc.Dim, HNSW: ann.HNSWConfig{M: 8, EfConstruction: 40}, Retrieval: retrievalSmall})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.LoadDemo(dc); err != nil {
		t.Fatal(err)
	}
	e.SetReady()
	return e
}

func TestRankValidates(t *testing.T) {
	e := smallEngine(t)
	f := func(req RankRequest, want string) {
		t.Helper()
		_, err := e.Rank(&req)
		var re *RequestError
		if !errors.As(err, &re) || re.Code != "invalid_argument" || re.Message[:len(want)] != want {
			t.Fatalf("Rank(%+v) = %v, want %q", req, err, want)
		}
	}
	f(RankRequest{K: -1}, "k must be between 1 and 1000")
	f(RankRequest{K: 1001}, "k must be between 1 and 1000")
	f(RankRequest{HasCandidates: true}, "candidates is empty")
	f(RankRequest{Exclude: make([]string, 5001)}, "exclude lists 5001 ids")
}

func TestRankDeterministic(t *testing.T) {
	e := smallEngine(t)
	req := RankRequest{UserID: "u7", K: 10, Context: []pipeline.ContextValue{{Key: "page", Str: "home"}}}
	a, err := e.Rank(&req)
	if err != nil {
		t.Fatal(err)
	}
	first := append([]uint32(nil), a.List.IDs...)
	e.Release(a)
	b, _ := e.Rank(&req)
	defer e.Release(b)
	if len(first) != 10 {
		t.Fatalf("got %d items", len(first))
	}
	for i := range first {
		if b.List.IDs[i] != first[i] {
			t.Fatalf("same request ranked differently: %v vs %v", first, b.List.IDs)
		}
	}
}
