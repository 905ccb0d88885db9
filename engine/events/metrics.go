package events

import (
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/podium-rank/podium/engine/events/wal"
	"github.com/podium-rank/podium/engine/features"
)

// lagHist is a log-linear histogram of durations in microseconds: 4 buckets per power of
// two (at most 19% relative error), lock-free.
type lagHist struct {
	b     [64 * 4]atomic.Uint64
	count atomic.Uint64
	max   atomic.Int64
}

func lagBucket(us uint64) int {
	if us < 4 {
		return int(us)
	}
	e := bits.Len64(us) - 1 // us in [2^e, 2^(e+1))
	return e*4 + int(us>>(e-2)&3)
}

func lagBucketUpper(i int) uint64 {
	if i < 4 {
		return uint64(i)
	}
	e, m := i/4, uint64(i%4)
	return (4+m+1)<<(e-2) - 1
}

func (h *lagHist) observe(d time.Duration) {
	us := uint64(max(d, 0) / time.Microsecond)
	h.b[min(lagBucket(us), len(h.b)-1)].Add(1)
	h.count.Add(1)
	for {
		old := h.max.Load()
		if int64(d) <= old || h.max.CompareAndSwap(old, int64(d)) {
			return
		}
	}
}

// quantile returns the upper bound of the bucket holding quantile q.
func (h *lagHist) quantile(q float64) time.Duration {
	n := h.count.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n-1)) + 1
	var seen uint64
	for i := range h.b {
		seen += h.b[i].Load()
		if seen >= rank {
			return time.Duration(lagBucketUpper(i)) * time.Microsecond
		}
	}
	return time.Duration(h.max.Load())
}

// TypeCounts counts events of one type.
type TypeCounts struct {
	Type     string `json:"type"`
	Accepted uint64 `json:"accepted"`
	Rejected uint64 `json:"rejected"`
}

// Metrics is a snapshot of an Ingestor's counters, for /metrics.
type Metrics struct {
	// ByType counts accepted and rejected events per type ("unknown" for a bad type).
	ByType []TypeCounts `json:"by_type"`
	// RejectedByCode counts rejected events per rejection code.
	RejectedByCode map[string]uint64 `json:"rejected_by_code"`
	// Bodies counts Ingest calls; FailedBodies those refused whole (bad body, WAL error).
	Bodies       uint64 `json:"bodies"`
	FailedBodies uint64 `json:"failed_bodies"`
	// Lag is the ingest lag, from event time to applied, over all events since start:
	// quantiles are upper bounds of log-linear buckets.
	LagP50 time.Duration `json:"lag_p50_ns"`
	LagP99 time.Duration `json:"lag_p99_ns"`
	LagMax time.Duration `json:"lag_max_ns"`
	// SinceLastApply is the time since the last event was applied, and NewestEventAge the
	// age of the newest event time applied: together, how stale the real-time features are.
	SinceLastApply time.Duration `json:"since_last_apply_ns"`
	NewestEventAge time.Duration `json:"newest_event_age_ns"`
	// CatalogErrors counts item updates the catalog refused at apply time (item deleted).
	CatalogErrors uint64 `json:"catalog_errors"`
	// Duplicates counts interactions dropped because the user's history already held the
	// same one (item, type and second): client retries, mostly.
	Duplicates uint64 `json:"duplicates"`
	// WAL holds the write-ahead log's counters (zero without a directory).
	WAL wal.Stats `json:"wal"`
	// Sessions and Exclusions hold the counters of the per-user and per-session stores.
	Sessions   features.KVStats `json:"sessions"`
	Exclusions features.KVStats `json:"exclusions"`
	// CoVisitItems and CoVisitPairs size the co-visitation lists.
	CoVisitItems int64 `json:"covisit_items"`
	CoVisitPairs int64 `json:"covisit_pairs"`
	// Checkpoints counts checkpoints written; LastCheckpoint is when the last one finished
	// and CheckpointPause how long the last one held up ingestion.
	Checkpoints     uint64        `json:"checkpoints"`
	LastCheckpoint  time.Time     `json:"last_checkpoint"`
	CheckpointPause time.Duration `json:"checkpoint_pause_ns"`
	// Recovery says what Open restored.
	Recovery Recovery `json:"recovery"`
}

// Recovery reports what Open restored from disk.
type Recovery struct {
	// Checkpoint is true when a checkpoint was loaded; CheckpointSeq is the last WAL seq it
	// covered.
	Checkpoint    bool   `json:"checkpoint"`
	CheckpointSeq uint64 `json:"checkpoint_seq"`
	// Records and Events count what was replayed from the WAL after the checkpoint.
	Records uint64 `json:"records"`
	Events  uint64 `json:"events"`
	// Took is how long Open's recovery took.
	Took time.Duration `json:"took_ns"`
	// Warnings lists state that could not be restored and was started empty instead.
	Warnings []string `json:"warnings,omitempty"`
}

type ingestCounters struct {
	accepted     [NumTypes]atomic.Uint64
	rejected     [NumTypes]atomic.Uint64
	byCode       [len(codes)]atomic.Uint64
	bodies       atomic.Uint64
	failedBodies atomic.Uint64
	lag          lagHist
}

var codes = [...]string{CodeInvalidJSON, CodeUnknownType, CodeMissingID, CodeInvalidID, CodeInvalidTS,
	CodeFutureTS, CodeInvalidValue, CodeEmptyUpdate, CodeUnknownItem}
