package kafka

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/podium-rank/podium/engine/events"
	"github.com/twmb/franz-go/pkg/kgo"
)

func benchRecord(i int) []byte {
	var sb strings.Builder
	for k := range 10 {
		typ := [...]string{"view", "view", "click", "view", "add_to_cart", "view", "click", "purchase", "view", "view"}[k]
		fmt.Fprintf(&sb, `{"type":%q,"user_id":"u%d","item_id":"i%d"}`+"\n", typ, i, (i*7919+k*104729)%10_000)
	}
	return []byte(sb.String())
}

// BenchmarkKafkaIngest measures the Kafka path: records of 10 events (NDJSON) are produced
// to an in-process kfake broker first, then the timer covers consuming and applying all of
// them. The broker runs on the same cores, so this is a lower bound for a remote cluster.
// "direct" applies the same bodies with Ingestor.IngestFrom from one goroutine, with no
// Kafka at all: the baseline the Kafka path is compared with.
func BenchmarkKafkaIngest(b *testing.B) {
	cat := testCatalog(b, 10_000)
	for _, mode := range []string{"direct", "kfake"} {
		b.Run(mode, func(b *testing.B) {
			g, err := events.Open("", events.DefaultConfig(), cat)
			if err != nil {
				b.Fatal(err)
			}
			recs := make([]*kgo.Record, b.N)
			for i := range recs {
				recs[i] = &kgo.Record{Value: benchRecord(i)}
			}
			b.ReportAllocs()
			if mode == "direct" {
				b.ResetTimer()
				now := time.Now()
				for i, r := range recs {
					if _, err := g.IngestFrom("direct", int64(i), r.Value, now); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)*10/b.Elapsed().Seconds(), "events/s")
				if d := g.Metrics(now).Duplicates; d > 0 {
					b.Fatalf("%d duplicates", d)
				}
				return
			}
			c := cluster(b, 2)
			p := producer(b, c)
			for lo := 0; lo < len(recs); lo += 1000 {
				if err := p.ProduceSync(context.Background(), recs[lo:min(lo+1000, len(recs))]...).FirstErr(); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			con := start(b, c, g)
			for con.Stats().Records < uint64(b.N) {
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			if st := con.Stats(); st.Events != uint64(b.N)*10 {
				b.Fatalf("stats %+v", st)
			}
			if d := g.Metrics(time.Now()).Duplicates; d > 0 {
				b.Fatalf("%d duplicates", d)
			}
			b.ReportMetric(float64(b.N)*10/b.Elapsed().Seconds(), "events/s")
		})
	}
}
