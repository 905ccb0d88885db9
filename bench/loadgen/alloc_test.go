//go:build !race

package loadgen

import (
	"context"
	"runtime"
	"testing"
	"time"
)

func TestRecordAndBodyDoNotAllocate(t *testing.T) {
	var h Histogram
	if n := testing.AllocsPerRun(1000, func() { h.Record(1234 * time.Microsecond) }); n != 0 {
		t.Errorf("Histogram.Record allocates %v times", n)
	}
	body, err := TemplateBody([]byte(`{"user_id":"{{user}}","n":{{i}}}`), 10000)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 64)
	i := 0
	if n := testing.AllocsPerRun(1000, func() { i++; buf = body(i, buf[:0]) }); n != 0 {
		t.Errorf("TemplateBody's BodyFunc allocates %v times", n)
	}
}

// TestRunDoesNotAllocatePerRequest compares the allocations of two runs that differ only
// in their request count, so fixed costs (workers, histograms, connections) cancel out.
// The in-process baseline server is included in the count; it does not allocate per
// request either.
func TestRunDoesNotAllocatePerRequest(t *testing.T) {
	addr, stop, err := StartServer("127.0.0.1:0", BaselineHandler)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	body, err := TemplateBody([]byte(`{"user_id":"{{user}}"}`), 10000)
	if err != nil {
		t.Fatal(err)
	}
	for _, rate := range []float64{0, 20000} {
		mallocs := func(n int) uint64 {
			cfg := Config{URL: "http://" + addr + BaselinePath, Concurrency: 2, Rate: rate, Requests: n, Body: body, Check: CheckContains(`"items"`)}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			rep, err := Run(context.Background(), cfg)
			runtime.ReadMemStats(&after)
			if err != nil || rep.Requests != int64(n) || rep.Errors.Total() != 0 {
				t.Fatalf("rate %v: run of %d: err %v, report %+v", rate, n, err, rep)
			}
			return after.Mallocs - before.Mallocs
		}
		mallocs(100) // warm pools
		small, large := mallocs(200), mallocs(3200)
		perReq := (float64(large) - float64(small)) / 3000
		t.Logf("rate %v: %d mallocs for 200 requests, %d for 3200: %.3f per request", rate, small, large, perReq)
		if perReq > 0.1 {
			t.Errorf("rate %v: %.3f allocations per request, want about 0", rate, perReq)
		}
	}
}
