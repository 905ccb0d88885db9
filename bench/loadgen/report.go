package loadgen

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// Report is the outcome of one Run. Durations are marshalled to JSON as integer
// nanoseconds (fields ending in _ns). A Report is a plain value: safe to read from many
// goroutines, not to modify concurrently.
type Report struct {
	Name        string  `json:"name,omitempty"`
	Mode        string  `json:"mode"` // ModeClosed or ModeOpen
	Concurrency int     `json:"concurrency"`
	TargetRate  float64 `json:"target_rate,omitempty"`   // fixed-rate mode only
	MaxInFlight int     `json:"max_in_flight,omitempty"` // fixed-rate mode only
	// Elapsed runs from the end of the warm-up to the completion of the last measured request.
	Elapsed time.Duration `json:"elapsed_ns"`
	// Requests counts measured requests that were sent, whatever their outcome; requests
	// dropped in fixed-rate mode are in Errors.Dropped only.
	Requests int64 `json:"requests"`
	// RPS is Requests / Elapsed.
	RPS    float64 `json:"rps"`
	Errors Errors  `json:"errors"`
	// Latency covers every request that got a response, whatever its status; in
	// fixed-rate mode it is measured from the scheduled send time.
	Latency Latency `json:"latency"`
	// SendLag (fixed-rate mode only) is how late requests were actually sent after their
	// scheduled time, because of timer granularity or a full worker pool. It is part of
	// Latency; if it is a large share of it the client, not the server, is the bottleneck.
	SendLag *Latency `json:"send_lag,omitempty"`
	// SchedulerLag (fixed-rate mode only) is the part of SendLag spent before the
	// scheduler handed the request over (a late timer or a starved client process); the
	// rest is waiting for a free worker, which is the server's doing. SchedulerLag also
	// counts dropped requests.
	SchedulerLag *Latency `json:"scheduler_lag,omitempty"`
	// Hist is the merged latency histogram behind Latency.
	Hist *Histogram `json:"-"`
}

// Latency summarizes a Histogram. Quantiles are within 0.39% of the true values; Min, Max
// and Mean are exact.
type Latency struct {
	Count int64         `json:"count"`
	Mean  time.Duration `json:"mean_ns"`
	Min   time.Duration `json:"min_ns"`
	P50   time.Duration `json:"p50_ns"`
	P90   time.Duration `json:"p90_ns"`
	P99   time.Duration `json:"p99_ns"`
	P999  time.Duration `json:"p999_ns"`
	Max   time.Duration `json:"max_ns"`
}

func summarize(h *Histogram) Latency {
	return Latency{
		Count: h.Count(),
		Mean:  h.Mean(),
		Min:   h.Min(),
		P50:   h.Quantile(0.50),
		P90:   h.Quantile(0.90),
		P99:   h.Quantile(0.99),
		P999:  h.Quantile(0.999),
		Max:   h.Max(),
	}
}

// Errors counts failed requests by kind. Each failed request is counted exactly once.
type Errors struct {
	// Status counts responses outside 2xx by status code.
	Status map[int]int64 `json:"status,omitempty"`
	// Transport counts requests that failed without a response for a reason other than
	// a timeout: refused or reset connections, malformed responses.
	Transport int64 `json:"transport"`
	// Timeout counts requests that got no response within Config.Timeout.
	Timeout int64 `json:"timeout"`
	// Check counts 2xx responses rejected by Config.Check.
	Check int64 `json:"check"`
	// Dropped counts requests not sent in fixed-rate mode because Config.MaxInFlight
	// requests were already outstanding.
	Dropped int64 `json:"dropped"`
	// Samples holds the first message seen of each kind, for diagnosis.
	Samples []string `json:"samples,omitempty"`

	sampled uint8 // kinds already in Samples
}

const (
	sampleStatus uint8 = 1 << iota
	sampleTransport
	sampleTimeout
	sampleCheck
)

// Total returns the number of failed requests of every kind, dropped ones included.
func (e *Errors) Total() int64 {
	n := e.Transport + e.Timeout + e.Check + e.Dropped
	for _, c := range e.Status {
		n += c
	}
	return n
}

func (e *Errors) sample(kind uint8, msg func() string) {
	if e.sampled&kind == 0 {
		e.sampled |= kind
		e.Samples = append(e.Samples, msg())
	}
}

func (e *Errors) addStatus(status int, body []byte) {
	if e.Status == nil {
		e.Status = make(map[int]int64)
	}
	e.Status[status]++
	e.sample(sampleStatus, func() string {
		return fmt.Sprintf("status %d: %.200s", status, body)
	})
}

func (e *Errors) addTransport(err error) {
	if isTimeout(err) {
		e.Timeout++
		e.sample(sampleTimeout, func() string { return "timeout: " + err.Error() })
		return
	}
	e.Transport++
	e.sample(sampleTransport, func() string { return "transport: " + err.Error() })
}

func (e *Errors) addCheck(err error) {
	e.Check++
	e.sample(sampleCheck, func() string { return "check: " + err.Error() })
}

func isTimeout(err error) bool {
	if err == fasthttp.ErrTimeout || errors.Is(err, fasthttp.ErrDialTimeout) {
		return true
	}
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

func (e *Errors) merge(o *Errors) {
	for code, n := range o.Status {
		if e.Status == nil {
			e.Status = make(map[int]int64)
		}
		e.Status[code] += n
	}
	e.Transport += o.Transport
	e.Timeout += o.Timeout
	e.Check += o.Check
	e.Dropped += o.Dropped
	// Samples are appended in kind order per worker; keep the first of each kind.
	for _, s := range o.Samples {
		k := sampleKind(s)
		if e.sampled&k == 0 {
			e.sampled |= k
			e.Samples = append(e.Samples, s)
		}
	}
}

func sampleKind(s string) uint8 {
	switch {
	case strings.HasPrefix(s, "status "):
		return sampleStatus
	case strings.HasPrefix(s, "transport: "):
		return sampleTransport
	case strings.HasPrefix(s, "timeout: "):
		return sampleTimeout
	default:
		return sampleCheck
	}
}

// String summarizes the errors on one line, for example "12 (500×10 timeout×2)", or "0".
func (e *Errors) String() string {
	total := e.Total()
	if total == 0 {
		return "0"
	}
	var parts []string
	for _, code := range slices.Sorted(maps.Keys(e.Status)) {
		parts = append(parts, fmt.Sprintf("%d×%d", code, e.Status[code]))
	}
	for _, k := range []struct {
		name string
		n    int64
	}{{"transport", e.Transport}, {"timeout", e.Timeout}, {"check", e.Check}, {"dropped", e.Dropped}} {
		if k.n > 0 {
			parts = append(parts, fmt.Sprintf("%s×%d", k.name, k.n))
		}
	}
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, " "))
}

// String formats the report for a terminal: a summary line, a latency line, and in
// fixed-rate mode a send-lag line, followed by one line per error sample.
func (r *Report) String() string {
	var b strings.Builder
	if r.Name != "" {
		fmt.Fprintf(&b, "%s: ", r.Name)
	}
	fmt.Fprintf(&b, "%s c=%d", r.Mode, r.Concurrency)
	if r.Mode == ModeOpen {
		fmt.Fprintf(&b, " rate=%g/s max-in-flight=%d", r.TargetRate, r.MaxInFlight)
	}
	fmt.Fprintf(&b, ": %d requests in %s, %.0f req/s, errors %s\n", r.Requests, fmtDur(r.Elapsed), r.RPS, r.Errors.String())
	fmt.Fprintf(&b, "latency: %s\n", r.Latency.String())
	if r.SendLag != nil {
		fmt.Fprintf(&b, "send lag (included in latency): p50 %s  p99 %s  max %s\n",
			fmtDur(r.SendLag.P50), fmtDur(r.SendLag.P99), fmtDur(r.SendLag.Max))
	}
	if r.SchedulerLag != nil {
		fmt.Fprintf(&b, "  of which scheduler late: p50 %s  p99 %s  max %s\n",
			fmtDur(r.SchedulerLag.P50), fmtDur(r.SchedulerLag.P99), fmtDur(r.SchedulerLag.Max))
	}
	for _, s := range r.Errors.Samples {
		fmt.Fprintf(&b, "  first %s\n", s)
	}
	return b.String()
}

// String formats the quantiles on one line.
func (l Latency) String() string {
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  mean %s",
		fmtDur(l.P50), fmtDur(l.P90), fmtDur(l.P99), fmtDur(l.P999), fmtDur(l.Max), fmtDur(l.Mean))
}

// MarkdownHeader returns the header and separator rows of the table whose rows
// Report.Markdown formats, separated by a newline, with no trailing newline (so
// fmt.Println(MarkdownHeader()) and fmt.Println(rep.Markdown()) build a table).
func MarkdownHeader() string {
	return "| run | mode | c | target req/s | requests | req/s | errors | p50 | p90 | p99 | p99.9 | max | mean |\n" +
		"|---|---|---|---|---|---|---|---|---|---|---|---|---|"
}

// Markdown formats the report as one Markdown table row (see MarkdownHeader), with no
// trailing newline.
func (r *Report) Markdown() string {
	target := "–"
	if r.TargetRate > 0 {
		target = fmt.Sprintf("%g", r.TargetRate)
	}
	name := r.Name
	if name == "" {
		name = "–"
	}
	l := r.Latency
	return fmt.Sprintf("| %s | %s | %d | %s | %d | %.0f | %s | %s | %s | %s | %s | %s | %s |",
		name, r.Mode, r.Concurrency, target, r.Requests, r.RPS, r.Errors.String(),
		fmtDur(l.P50), fmtDur(l.P90), fmtDur(l.P99), fmtDur(l.P999), fmtDur(l.Max), fmtDur(l.Mean))
}

// JSON returns the report as indented JSON.
func (r *Report) JSON() []byte {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		panic(err) // Report holds only marshalable fields.
	}
	return b
}

// Comparison holds the ratios of two reports, A over B: Throughput above 1 means A served
// more requests per second, latency ratios above 1 mean A was slower.
type Comparison struct {
	A, B       string
	Throughput float64
	P50        float64
	P90        float64
	P99        float64
	P999       float64
}

// Ratio compares run a with run b (typically engine with baseline, measured in the same
// process run so that machine noise affects both alike).
func Ratio(a, b *Report) Comparison {
	div := func(x, y float64) float64 {
		if y == 0 {
			return 0
		}
		return x / y
	}
	d := func(x, y time.Duration) float64 { return div(float64(x), float64(y)) }
	return Comparison{
		A:          a.Name,
		B:          b.Name,
		Throughput: div(a.RPS, b.RPS),
		P50:        d(a.Latency.P50, b.Latency.P50),
		P90:        d(a.Latency.P90, b.Latency.P90),
		P99:        d(a.Latency.P99, b.Latency.P99),
		P999:       d(a.Latency.P999, b.Latency.P999),
	}
}

// String formats the comparison on one line, for example
// "engine/baseline: req/s 0.45×, p50 2.10×, p90 2.31×, p99 3.00×, p99.9 2.80×".
func (c Comparison) String() string {
	a, b := c.A, c.B
	if a == "" {
		a = "a"
	}
	if b == "" {
		b = "b"
	}
	return fmt.Sprintf("%s/%s: req/s %.2f×, p50 %.2f×, p90 %.2f×, p99 %.2f×, p99.9 %.2f×",
		a, b, c.Throughput, c.P50, c.P90, c.P99, c.P999)
}

// fmtDur formats d with three significant digits in ns, µs, ms or s.
func fmtDur(d time.Duration) string {
	f := func(v float64, unit string) string {
		switch {
		case v >= 100:
			return fmt.Sprintf("%.0f%s", v, unit)
		case v >= 10:
			return fmt.Sprintf("%.1f%s", v, unit)
		default:
			return fmt.Sprintf("%.2f%s", v, unit)
		}
	}
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", int64(d))
	case d < time.Millisecond:
		return f(float64(d)/1e3, "µs")
	case d < time.Second:
		return f(float64(d)/1e6, "ms")
	default:
		return f(float64(d)/1e9, "s")
	}
}
