// Command loadgen drives HTTP POST load at a URL, closed-loop or at a fixed rate, and
// prints throughput, errors and latency quantiles. It is a thin CLI over bench/loadgen.
//
// Examples, against the engine's demo catalog (users u0..u9999):
//
//	go run ./bench/cmd/loadgen -url http://127.0.0.1:8080/v1/rank -c 32 -d 10s
//	go run ./bench/cmd/loadgen -url http://127.0.0.1:8080/v1/rank -rate 2000 -c 64 -d 30s -json
//	go run ./bench/cmd/loadgen -body req.json -users 10000 -n 100000
//
// -body is inline JSON if it starts with '{' or '[', otherwise a file name. In it,
// {{user}} becomes u<n> with n in [0, -users) and {{i}} the request index; with -users > 0
// and no {{user}}, the value of a "user_id" string field is varied instead.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/podium-rank/podium/bench/loadgen"
)

func main() {
	var (
		url         = flag.String("url", "http://127.0.0.1:8080/v1/rank", "target URL")
		c           = flag.Int("c", 32, "workers (connections); each has at most one request in flight")
		rate        = flag.Float64("rate", 0, "fixed-rate mode: requests per second, latency measured from the schedule (0: closed loop)")
		maxInFlight = flag.Int("max-inflight", 0, "fixed-rate mode: outstanding requests beyond which new ones are dropped (0: max(c, rate))")
		d           = flag.Duration("d", 10*time.Second, "measured duration, after the warm-up (default 0 when only -n is given)")
		n           = flag.Int("n", 0, "stop after this many measured requests (0: no limit)")
		warmup      = flag.Duration("warmup", time.Second, "warm-up period excluded from the figures")
		body        = flag.String("body", `{"user_id":"{{user}}"}`, "request body template: inline JSON or a file name")
		users       = flag.Int("users", 10000, "vary user ids u0..u<users-1> in the body (0: send the body as is)")
		keepAlive   = flag.Bool("k", true, "keep connections alive (-k=false opens one per request)")
		timeout     = flag.Duration("timeout", 10*time.Second, "per-request timeout")
		expect      = flag.String("expect", `"items"`, "count 2xx responses whose body lacks this string as errors (empty: no check)")
		name        = flag.String("name", "", "label for the report")
		asJSON      = flag.Bool("json", false, "print the report as JSON")
		asMarkdown  = flag.Bool("md", false, "print the report as a Markdown table row with its header")
	)
	flag.Parse()
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *n > 0 && !set["d"] {
		*d = 0
	}

	tmpl := []byte(*body)
	if t := strings.TrimSpace(*body); !strings.HasPrefix(t, "{") && !strings.HasPrefix(t, "[") {
		b, err := os.ReadFile(*body)
		if err != nil {
			log.Fatalf("cannot read -body: %v", err)
		}
		tmpl = b
	}
	gen, err := loadgen.TemplateBody(tmpl, *users)
	if err != nil {
		log.Fatal(err)
	}
	cfg := loadgen.Config{
		Name: *name, URL: *url, Body: gen, Concurrency: *c, Rate: *rate, MaxInFlight: *maxInFlight,
		Duration: *d, Requests: *n, Warmup: *warmup, Timeout: *timeout, DisableKeepAlive: !*keepAlive,
	}
	if *expect != "" {
		cfg.Check = loadgen.CheckContains(*expect)
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	rep, err := loadgen.Run(ctx, cfg)
	if rep == nil {
		log.Fatal(err)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "loadgen: stopped early: %v\n", err)
	}
	switch {
	case *asJSON:
		fmt.Printf("%s\n", rep.JSON())
	case *asMarkdown:
		fmt.Println(loadgen.MarkdownHeader())
		fmt.Println(rep.Markdown())
	default:
		fmt.Print(rep.String())
	}
}
