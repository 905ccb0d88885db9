//go:build !race

package ann

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/podium-rank/podium/engine/ann/internal/mnist"
)

// Fashion-MNIST: 60k training images as the base, the first fmnistQueries test images as
// queries, 784-d, cosine. It needs Debian's dataset-fashion-mnist (scripts/setup.sh installs
// it) and is too slow for -race, hence the build tag.
const fmnistQueries = 300

type fmnistData struct {
	base, queries [][]float32
	flat          *Flat
	truth10       [][]Result

	hnswOnce  sync.Once
	hnsw      *HNSW
	hnswBuild time.Duration
}

var (
	fmnistOnce sync.Once
	fmnistSet  *fmnistData
	fmnistErr  error
)

// getFashionMNIST loads the data set once per test binary, or fails or skips tb if it is
// missing: it fails when CI=true, so CI cannot silently lose the test.
func getFashionMNIST(tb testing.TB) *fmnistData {
	tb.Helper()
	fmnistOnce.Do(func() {
		train, err := mnist.Load(filepath.Join(mnist.DefaultDir, "train-images-idx3-ubyte.gz"))
		if err != nil {
			fmnistErr = err
			return
		}
		test, err := mnist.Load(filepath.Join(mnist.DefaultDir, "t10k-images-idx3-ubyte.gz"))
		if err != nil {
			fmnistErr = err
			return
		}
		d := &fmnistData{flat: NewFlat(train.Dim(), Cosine)}
		for i := range train.N {
			d.base = append(d.base, train.Row(i))
		}
		for i := range min(fmnistQueries, test.N) {
			d.queries = append(d.queries, test.Row(i))
		}
		fillParallel(tb, d.flat, d.base, 2)
		for _, q := range d.queries {
			d.truth10 = append(d.truth10, d.flat.Search(q, 10, nil, nil))
		}
		fmnistSet = d
	})
	if fmnistErr != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("Fashion-MNIST is missing (%v); run scripts/setup.sh", fmnistErr)
		}
		tb.Skipf("Fashion-MNIST is missing (%v); run scripts/setup.sh to install dataset-fashion-mnist", fmnistErr)
	}
	return fmnistSet
}

func (d *fmnistData) getHNSW(tb testing.TB) *HNSW {
	d.hnswOnce.Do(func() {
		start := time.Now()
		h := NewHNSW(len(d.base[0]), Cosine, HNSWConfig{})
		fillParallel(tb, h, d.base, 2)
		d.hnswBuild = time.Since(start)
		d.hnsw = h
	})
	return d.hnsw
}

func TestFashionMNISTRecall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 60k × 784 HNSW")
	}
	d := getFashionMNIST(t)
	h := d.getHNSW(t)
	if h.Len() != 60000 || len(d.queries) < 200 {
		t.Fatalf("Len = %d with %d queries", h.Len(), len(d.queries))
	}
	got, _ := searchAll(d.queries, 10, func(q []float32, dst []Result) []Result { return h.Search(q, 10, nil, dst) })
	r := recallVs(got, d.truth10)
	t.Logf("Fashion-MNIST: built 60k × 784 in %v (2 goroutines); recall@10 = %.4f at ef %d", d.hnswBuild, r, h.EfSearch())
	if r < 0.95 {
		t.Errorf("recall@10 = %.4f, want >= 0.95", r)
	}
}

// BenchmarkFashionMNIST times k=10 queries on HNSW at several ef and on Flat over the same
// data. Run them in one invocation: Flat then reports hnsw-speedup, its time per query over
// HNSW's at the default ef (64) from this run.
//
//	go test -run '^$' -bench FashionMNIST -benchtime 300x ./engine/ann/
func BenchmarkFashionMNIST(b *testing.B) {
	d := getFashionMNIST(b)
	h := d.getHNSW(b)
	var hnswNs float64
	for _, ef := range []int{32, 64, 100} {
		b.Run(fmt.Sprintf("HNSW/ef=%d", ef), func(b *testing.B) {
			b.ReportAllocs()
			dst := make([]Result, 0, 10)
			i := 0
			for b.Loop() {
				dst = h.SearchEf(d.queries[i%len(d.queries)], 10, ef, nil, dst)
				i++
			}
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			if ef == h.EfSearch() {
				hnswNs = ns
			}
			got, _ := searchAll(d.queries, 10, func(q []float32, dst []Result) []Result { return h.SearchEf(q, 10, ef, nil, dst) })
			b.ReportMetric(recallVs(got, d.truth10), "recall@10")
			b.ReportMetric(1e9/ns, "qps")
		})
	}
	b.Run("Flat", func(b *testing.B) {
		b.ReportAllocs()
		dst := make([]Result, 0, 10)
		i := 0
		for b.Loop() {
			dst = d.flat.Search(d.queries[i%len(d.queries)], 10, nil, dst)
			i++
		}
		ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(1e9/ns, "qps")
		if hnswNs > 0 {
			b.ReportMetric(ns/hnswNs, "hnsw-speedup")
		}
	})
}
