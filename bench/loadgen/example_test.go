package loadgen_test

import (
	"context"
	"fmt"
	"time"

	"github.com/podium-rank/podium/bench/loadgen"
)

// Run a fixed number of closed-loop requests against the in-process baseline, varying
// the user id of each request, and validate every response.
func ExampleRun() {
	addr, stop, err := loadgen.StartServer("127.0.0.1:0", loadgen.BaselineHandler)
	if err != nil {
		panic(err)
	}
	defer stop()
	body, err := loadgen.TemplateBody([]byte(`{"user_id":"{{user}}"}`), 10000)
	if err != nil {
		panic(err)
	}
	rep, err := loadgen.Run(context.Background(), loadgen.Config{
		URL:         "http://" + addr + loadgen.BaselinePath,
		Concurrency: 4,
		Requests:    500,
		Body:        body,
		Check:       loadgen.CheckContains(`"items"`),
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(rep.Requests, "requests, errors", rep.Errors.String())
	// Output: 500 requests, errors 0
}

func ExampleTemplateBody() {
	body, err := loadgen.TemplateBody([]byte(`{"user_id":"u0","request":"r{{i}}"}`), 10000)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(body(0, nil)))
	fmt.Println(string(body(1, nil)))
	// Output:
	// {"user_id":"u7535","request":"r0"}
	// {"user_id":"u2465","request":"r1"}
}

func ExampleHistogram() {
	var h loadgen.Histogram
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	// Quantiles come from bucket midpoints (within 0.39%); Max is exact.
	fmt.Println(h.Quantile(0.5).Round(time.Microsecond), h.Quantile(0.99).Round(time.Microsecond), h.Max())
	// Output: 501µs 989µs 1ms
}

func ExampleRatio() {
	engine := &loadgen.Report{Name: "engine", RPS: 2000, Latency: loadgen.Latency{P50: 900 * time.Microsecond, P99: 2 * time.Millisecond}}
	baseline := &loadgen.Report{Name: "baseline", RPS: 40000, Latency: loadgen.Latency{P50: 40 * time.Microsecond, P99: 400 * time.Microsecond}}
	fmt.Println(loadgen.Ratio(engine, baseline))
	// Output: engine/baseline: req/s 0.05×, p50 22.50×, p90 0.00×, p99 5.00×, p99.9 0.00×
}
