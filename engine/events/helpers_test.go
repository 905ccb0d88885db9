package events

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/podium-rank/podium/engine/catalog"
)

// testCatalog returns a catalog of n items "i0".."i{n-1}" with 4-d embeddings: item k points
// along axis k%4, with a "popularity" feature of n-k and category "c<k%4>".
func testCatalog(t testing.TB, n int) *catalog.Catalog {
	t.Helper()
	cat := catalog.New(catalog.Config{Dim: 4})
	for k := range n {
		emb := make([]float32, 4)
		emb[k%4] = 1
		emb[(k+1)%4] = 0.01 * float32(k%7) // keep items distinct
		_, err := cat.Upsert(&catalog.Item{ID: fmt.Sprintf("i%d", k), Embedding: emb, InStock: true,
			Features:   []catalog.Feature{{Name: "popularity", Value: float32(n - k)}},
			Attributes: []catalog.Attribute{{Name: "category", Value: fmt.Sprintf("c%d", k%4)}}})
		ok(t, err)
	}
	return cat
}

// memIngestor returns an in-memory ingestor over a fresh test catalog of n items.
func memIngestor(t testing.TB, n int, cfg Config) (*Ingestor, *catalog.Catalog) {
	t.Helper()
	cat := testCatalog(t, n)
	g, err := Open("", cfg, cat)
	ok(t, err)
	return g, cat
}

func dense(t testing.TB, cat *catalog.Catalog, name string) uint32 {
	t.Helper()
	id, found := cat.Items().Lookup(name)
	truth(t, found, "no item %s", name)
	return id
}

// ev formats one event line; ts is relative to t0.
func ev(typ, user, session, item string, at time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{"type":%q`, typ)
	if user != "" {
		fmt.Fprintf(&b, `,"user_id":%q`, user)
	}
	if session != "" {
		fmt.Fprintf(&b, `,"session_id":%q`, session)
	}
	fmt.Fprintf(&b, `,"item_id":%q,"ts":%q}`, item, t0.Add(at).Format(time.RFC3339Nano))
	return b.String()
}

// ingest ingests lines at t0+at and requires every event to be accepted.
func ingest(t testing.TB, g *Ingestor, at time.Duration, lines ...string) Result {
	t.Helper()
	res, err := g.Ingest([]byte(strings.Join(lines, "\n")), t0.Add(at))
	ok(t, err)
	if res.Rejected != 0 {
		t.Fatalf("rejected: %+v", res.Rejections)
	}
	return res
}

func cosine(a, b []float32) float64 {
	var d, na, nb float64
	for i := range a {
		d += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return d / math.Sqrt(na*nb)
}
