package loadgen

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestBaselineReport measures the in-process baseline with this package and prints a
// Markdown table. It only runs with PODIUM_BENCH=1; PODIUM_BENCH_D sets each run's
// duration (default 5s):
//
//	PODIUM_BENCH=1 go test ./bench/loadgen -run TestBaselineReport -v
//
// A benchmark of the engine can call RunBaseline the same way, in the same process run,
// and print Ratio(engine, baseline).
func TestBaselineReport(t *testing.T) {
	if os.Getenv("PODIUM_BENCH") != "1" {
		t.Skip("set PODIUM_BENCH=1 to measure the baseline")
	}
	d := 5 * time.Second
	if s := os.Getenv("PODIUM_BENCH_D"); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			t.Fatalf("PODIUM_BENCH_D: %v", err)
		}
	}
	body, err := TemplateBody([]byte(`{"user_id":"{{user}}"}`), 10000)
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	table.WriteString(MarkdownHeader() + "\n")
	var c32 *Report
	for _, cfg := range []Config{
		{Name: "baseline c=2", Concurrency: 2},
		{Name: "baseline c=32", Concurrency: 32},
		{Name: "baseline 5k/s", Concurrency: 32, Rate: 5000},
	} {
		cfg.Duration, cfg.Warmup, cfg.Body, cfg.Check = d, time.Second, body, CheckContains(`"items"`)
		rep, err := RunBaseline(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Errors.Total() != 0 {
			t.Errorf("%s: errors %s", cfg.Name, rep.Errors.String())
		}
		t.Logf("\n%s", rep)
		table.WriteString(rep.Markdown() + "\n")
		if cfg.Concurrency == 32 && cfg.Rate == 0 {
			c32 = rep
		} else if c32 != nil {
			t.Logf("%s", Ratio(rep, c32))
		}
	}
	fmt.Print(table.String())
}

// BenchmarkBaseline runs b.N closed-loop requests against the in-process baseline: ns/op
// is the inverse of throughput and allocs/op counts client and server together.
func BenchmarkBaseline(b *testing.B) {
	addr, stop, err := StartServer("127.0.0.1:0", BaselineHandler)
	if err != nil {
		b.Fatal(err)
	}
	defer stop()
	body, err := TemplateBody([]byte(`{"user_id":"{{user}}"}`), 10000)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []int{2, 32} {
		b.Run(fmt.Sprintf("c=%d", c), func(b *testing.B) {
			cfg := Config{URL: "http://" + addr + BaselinePath, Concurrency: c, Body: body, Requests: b.N}
			b.ReportAllocs()
			b.SetBytes(int64(len(baselineBody)))
			b.ResetTimer()
			rep, err := Run(context.Background(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			if rep.Errors.Total() != 0 {
				b.Fatalf("errors %s", rep.Errors.String())
			}
			b.ReportMetric(float64(rep.Latency.P50.Microseconds()), "p50-µs")
			b.ReportMetric(float64(rep.Latency.P99.Microseconds()), "p99-µs")
		})
	}
}
