package wal

import (
	"testing"
)

// BenchmarkAppend measures Append per fsync policy, from one goroutine (every record pays
// its own write, and under "always" its own fsync) and from 16 goroutines per core through
// b.RunParallel (group commit shares writes and fsyncs). Payloads are 1 KiB, about a batch
// of ten events in the events codec. "records/write" is the mean group size.
func BenchmarkAppend(b *testing.B) {
	payload := make([]byte, 1024)
	for i := range payload {
		payload[i] = byte(i)
	}
	for _, p := range []SyncPolicy{SyncAlways, SyncInterval, SyncNone} {
		for _, mode := range []string{"serial", "parallel16"} {
			b.Run(p.String()+"/"+mode, func(b *testing.B) {
				l, err := Open(b.TempDir(), Options{Sync: p})
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				b.SetBytes(int64(len(payload)))
				b.ReportAllocs()
				b.ResetTimer()
				if mode == "serial" {
					for range b.N {
						if _, err := l.Append(payload); err != nil {
							b.Fatal(err)
						}
					}
				} else {
					b.SetParallelism(16)
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if _, err := l.Append(payload); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				b.StopTimer()
				st := l.Stats()
				b.ReportMetric(float64(st.Records)/float64(max(st.Writes, 1)), "records/write")
				b.ReportMetric(float64(st.Fsyncs)/float64(max(st.Records, 1))*1e3, "fsyncs/1k-records")
			})
		}
	}
}
