// Package kafka feeds events from a Kafka topic into an events.Ingestor with franz-go, so
// that every replica of a horizontally scaled engine sees every event.
//
// Each replica consumes every partition of the topic directly (no consumer group: a group
// would split the partitions between replicas, and each would see only part of the events).
// A record's value is the same JSON as a POST /v1/events body: one event object, a JSON
// array or NDJSON. Records apply through Ingestor.IngestFrom, the same decode, validate and
// apply path as HTTP but without the WAL (Kafka is the log), and each record's offset+1 is
// recorded atomically with its apply. The Ingestor's checkpoints save those positions with
// the state, so a restart loads the checkpoint and resumes each partition where the
// checkpointed state left it: nothing is applied twice and nothing is skipped.
//
// To point an engine at a real cluster, set Config.Brokers and Config.Topic, and pass TLS
// and SASL through Config.Opts, e.g.
//
//	kgo.DialTLSConfig(&tls.Config{}),
//	kgo.SASL(plain.Auth{User: "u", Pass: "p"}.AsMechanism())   // or scram.Auth{...}.AsSha512Mechanism()
//
// Config.StartAt chooses where a partition without a saved position starts.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/podium-rank/podium/engine/events"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Config configures a Consumer.
type Config struct {
	// Brokers are the seed brokers, host:port.
	Brokers []string
	// Topic is the topic of events.
	Topic string
	// ClientID names this replica in broker logs (default "podium-events").
	ClientID string
	// StartAt is where a partition with no saved position starts: "earliest" (default,
	// replay what the topic retains) or "latest" (only new events).
	StartAt string
	// MaxPollRecords bounds the records handled per poll (default 1000).
	MaxPollRecords int
	// PartitionCheck is how often the topic is checked for new partitions (default 30s).
	PartitionCheck time.Duration
	// Opts are extra franz-go client options: TLS, SASL, timeouts, fetch sizes.
	Opts []kgo.Opt
}

// Stats are a consumer's counters.
type Stats struct {
	Records    uint64 // records consumed
	Events     uint64 // events accepted
	Rejected   uint64 // events rejected (bad event inside a good record)
	BadRecords uint64 // records whose value was not events JSON at all; skipped
	FetchErrs  uint64 // fetch errors reported by the client (it retries)
	Partitions int    // partitions being consumed
	// Lag is the number of records behind the high watermarks seen in the last fetches.
	Lag       int64
	LastError string
}

// Consumer consumes one topic into an Ingestor. Run it in its own goroutine; Stats and
// Close are goroutine-safe.
type Consumer struct {
	cfg Config
	ing *events.Ingestor

	mu       sync.Mutex
	cl       *kgo.Client
	sources  map[int32]string
	lag      map[int32]int64
	lastErr  string
	closed   bool
	cancel   context.CancelFunc
	runDone  chan struct{}
	nparts   atomic.Int64
	records  atomic.Uint64
	accepted atomic.Uint64
	rejected atomic.Uint64
	bad      atomic.Uint64
	fetchErr atomic.Uint64
}

// New returns a consumer of cfg.Topic into ing. It does not connect until Run.
func New(cfg Config, ing *events.Ingestor) (*Consumer, error) {
	if len(cfg.Brokers) == 0 || cfg.Topic == "" {
		return nil, errors.New("kafka: brokers and topic are required")
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "podium-events"
	}
	switch cfg.StartAt {
	case "":
		cfg.StartAt = "earliest"
	case "earliest", "latest":
	default:
		return nil, fmt.Errorf("kafka: StartAt %q; want earliest or latest", cfg.StartAt)
	}
	if cfg.MaxPollRecords <= 0 {
		cfg.MaxPollRecords = 1000
	}
	if cfg.PartitionCheck <= 0 {
		cfg.PartitionCheck = 30 * time.Second
	}
	return &Consumer{cfg: cfg, ing: ing, sources: map[int32]string{}, lag: map[int32]int64{}}, nil
}

// Source returns the Ingestor position name of a partition: "kafka/<topic>/<partition>".
func Source(topic string, partition int32) string {
	return "kafka/" + topic + "/" + strconv.Itoa(int(partition))
}

func (c *Consumer) source(p int32) string {
	s, ok := c.sources[p]
	if !ok {
		s = Source(c.cfg.Topic, p)
		c.sources[p] = s
	}
	return s
}

func (c *Consumer) startOffset() kgo.Offset {
	if c.cfg.StartAt == "latest" {
		return kgo.NewOffset().AtEnd()
	}
	return kgo.NewOffset().AtStart()
}

// offsetsFor returns where to start each of partitions: the saved position, else StartAt.
func (c *Consumer) offsetsFor(partitions []int32) map[int32]kgo.Offset {
	saved := c.ing.Positions()
	out := make(map[int32]kgo.Offset, len(partitions))
	for _, p := range partitions {
		if pos, ok := saved[Source(c.cfg.Topic, p)]; ok {
			out[p] = kgo.NewOffset().At(pos)
		} else {
			out[p] = c.startOffset()
		}
	}
	return out
}

// partitions asks the cluster for the topic's partitions.
func partitions(ctx context.Context, cl *kgo.Client, topic string) ([]int32, error) {
	req := kmsg.NewPtrMetadataRequest()
	t := kmsg.NewMetadataRequestTopic()
	t.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	for _, rt := range resp.Topics {
		if rt.Topic == nil || *rt.Topic != topic {
			continue
		}
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil {
			return nil, err
		}
		ps := make([]int32, 0, len(rt.Partitions))
		for _, p := range rt.Partitions {
			ps = append(ps, p.Partition)
		}
		return ps, nil
	}
	return nil, kerr.UnknownTopicOrPartition
}

// Run connects, finds the topic's partitions (waiting for the topic to exist), and applies
// records until ctx is done or Close is called; then it returns nil. It returns an error
// only if it cannot create a client or the ingestor is closed under it.
func (c *Consumer) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		cancel()
		return nil
	}
	c.cancel, c.runDone = cancel, make(chan struct{})
	c.mu.Unlock()
	defer close(c.runDone)
	defer cancel()

	base := append([]kgo.Opt{kgo.SeedBrokers(c.cfg.Brokers...), kgo.ClientID(c.cfg.ClientID)}, c.cfg.Opts...)
	meta, err := kgo.NewClient(base...)
	if err != nil {
		return fmt.Errorf("kafka: cannot create client: %w", err)
	}
	var parts []int32
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
		parts, err = partitions(ctx, meta, c.cfg.Topic)
		if err == nil && len(parts) > 0 {
			break
		}
		c.setErr(fmt.Errorf("cannot list partitions of %q: %v", c.cfg.Topic, err))
		select {
		case <-ctx.Done():
			meta.Close()
			return nil
		case <-time.After(backoff):
		}
	}
	meta.Close()

	opts := append(base, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{c.cfg.Topic: c.offsetsFor(parts)}),
		kgo.ConsumeResetOffset(c.startOffset()))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka: cannot create client: %w", err)
	}
	c.mu.Lock()
	c.cl = cl
	c.mu.Unlock()
	defer cl.Close()
	known := map[int32]bool{}
	for _, p := range parts {
		known[p] = true
	}
	c.nparts.Store(int64(len(known)))
	nextCheck := time.Now().Add(c.cfg.PartitionCheck)
	for {
		if time.Now().After(nextCheck) {
			nextCheck = time.Now().Add(c.cfg.PartitionCheck)
			if ps, err := partitions(ctx, cl, c.cfg.Topic); err == nil {
				var added []int32
				for _, p := range ps {
					if !known[p] {
						known[p] = true
						added = append(added, p)
					}
				}
				if len(added) > 0 {
					cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{c.cfg.Topic: c.offsetsFor(added)})
					c.nparts.Store(int64(len(known)))
				}
			}
		}
		pollCtx, pollCancel := context.WithTimeout(ctx, c.cfg.PartitionCheck)
		fs := cl.PollRecords(pollCtx, c.cfg.MaxPollRecords)
		pollCancel()
		if fs.IsClientClosed() || ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(_ string, _ int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return
			}
			c.fetchErr.Add(1)
			c.setErr(err)
		})
		var ingErr error
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if ingErr != nil {
				return
			}
			src := c.source(p.Partition)
			last := int64(-1)
			for _, r := range p.Records {
				if ingErr = c.apply(src, r); ingErr != nil {
					return
				}
				last = r.Offset
			}
			if last >= 0 {
				c.mu.Lock()
				c.lag[p.Partition] = max(0, p.HighWatermark-last-1)
				c.mu.Unlock()
			}
		})
		if ingErr != nil {
			if ctx.Err() != nil {
				return nil
			}
			return ingErr
		}
	}
}

// apply ingests one record; only a closed ingestor stops the consumer.
func (c *Consumer) apply(src string, r *kgo.Record) error {
	c.records.Add(1)
	res, err := c.ing.IngestFrom(src, r.Offset+1, r.Value, time.Now())
	switch {
	case errors.Is(err, events.ErrClosed):
		return err
	case err != nil:
		// Not events at all: skip it, or the partition would be stuck on it forever.
		c.bad.Add(1)
		c.setErr(fmt.Errorf("record %s@%d: %v", src, r.Offset, err))
		return nil
	}
	c.accepted.Add(uint64(res.Accepted))
	c.rejected.Add(uint64(res.Rejected))
	return nil
}

func (c *Consumer) setErr(err error) {
	c.mu.Lock()
	c.lastErr = err.Error()
	c.mu.Unlock()
}

// Stats returns the consumer's counters.
func (c *Consumer) Stats() Stats {
	c.mu.Lock()
	var lag int64
	for _, l := range c.lag {
		lag += l
	}
	last := c.lastErr
	c.mu.Unlock()
	return Stats{Records: c.records.Load(), Events: c.accepted.Load(), Rejected: c.rejected.Load(),
		BadRecords: c.bad.Load(), FetchErrs: c.fetchErr.Load(), Partitions: int(c.nparts.Load()), Lag: lag, LastError: last}
}

// Close stops Run and waits for it to return. Records applied before Close keep their
// positions in the Ingestor; checkpoint the Ingestor after Close to save them.
func (c *Consumer) Close() {
	c.mu.Lock()
	c.closed = true
	cancel, done := c.cancel, c.runDone
	c.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}
