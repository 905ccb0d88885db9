package events

import (
	"cmp"
	"fmt"
	"github.com/podium-rank/podium/engine/internal/jsonw"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/podium-rank/podium/engine/catalog"
	"github.com/podium-rank/podium/engine/events/wal"
)

// Ingestor is the front door for events: Ingest decodes, validates, logs and applies one
// body, synchronously, so the change is visible to the very next rank request. It owns the
// State the rank path reads, the write-ahead log and the checkpoints in its directory:
//
//	dir/wal/         WAL segments (package events/wal)
//	dir/checkpoint/  the last checkpoint: META (JSON), state.bin, kv/ and xkv/ (KV snapshots)
//
// All methods are goroutine-safe.
type Ingestor struct {
	cfg   Config
	dir   string
	cat   *catalog.Catalog
	state *State
	log   *wal.Log

	// ck orders applies against checkpoints: an Ingest holds it shared from its WAL append
	// to the end of its apply, a checkpoint exclusively, so a checkpoint sees every event
	// up to its WAL seq applied and none after it.
	ck     sync.RWMutex
	posMu  sync.Mutex
	pos    map[string]int64
	ckMu   sync.Mutex // serialises checkpoints
	closed atomic.Bool

	batches sync.Pool
	bufs    sync.Pool
	ctr     ingestCounters

	// kvSeq and kvPos bound the events a restored checkpoint's user state may already hold
	// beyond its item state (see checkpoint.go); set by Open, then read-only.
	kvSeq uint64
	kvPos map[string]int64
	// checkpointHook, when set by a test, runs between a checkpoint's two phases.
	checkpointHook func()

	recovery    Recovery
	checkpoints atomic.Uint64
	lastCk      atomic.Int64
	ckPause     atomic.Int64
	stop        chan struct{}
	loopDone    chan struct{}
}

// Result is the outcome of one Ingest: what was accepted and what was rejected, and why.
type Result struct {
	// Accepted and Rejected count the body's events.
	Accepted int `json:"accepted"`
	Rejected int `json:"rejected"`
	// AcceptedByType and RejectedByType count them per Type (index TypeUnknown for events
	// whose type was missing or unknown).
	AcceptedByType [NumTypes]int `json:"-"`
	RejectedByType [NumTypes]int `json:"-"`
	// Rejections lists up to MaxReportedRejections rejected events by position.
	Rejections []Rejection `json:"errors"`
	// WALSeq is the WAL record holding the accepted events (0 without a WAL or when none
	// was accepted).
	WALSeq uint64 `json:"wal_seq,omitempty"`
}

// AppendJSON appends r as the JSON body of a 202 answer and returns it:
//
//	{"accepted":2,"rejected":1,"accepted_by_type":{"click":2},"rejected_by_type":{"view":1},
//	 "errors":[{"index":1,"type":"view","code":"missing_id","error":"a view needs an item_id"}]}
func (r *Result) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"accepted":`...)
	dst = strconv.AppendInt(dst, int64(r.Accepted), 10)
	dst = append(dst, `,"rejected":`...)
	dst = strconv.AppendInt(dst, int64(r.Rejected), 10)
	for k, counts := range [2]*[NumTypes]int{&r.AcceptedByType, &r.RejectedByType} {
		dst = append(dst, [2]string{`,"accepted_by_type":{`, `,"rejected_by_type":{`}[k]...)
		first := true
		for t, n := range counts {
			if n == 0 {
				continue
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = jsonw.AppendString(dst, Type(t).String())
			dst = append(dst, ':')
			dst = strconv.AppendInt(dst, int64(n), 10)
		}
		dst = append(dst, '}')
	}
	dst = append(dst, `,"errors":[`...)
	for i, e := range r.Rejections {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"index":`...)
		dst = strconv.AppendInt(dst, int64(e.Index), 10)
		if e.Type != "" {
			dst = append(dst, `,"type":`...)
			dst = jsonw.AppendString(dst, e.Type)
		}
		dst = append(dst, `,"code":`...)
		dst = jsonw.AppendString(dst, e.Code)
		dst = append(dst, `,"error":`...)
		dst = jsonw.AppendString(dst, e.Error)
		dst = append(dst, '}')
	}
	dst = append(dst, ']')
	if r.WALSeq != 0 {
		dst = append(dst, `,"wal_seq":`...)
		dst = strconv.AppendUint(dst, r.WALSeq, 10)
	}
	return append(dst, '}')
}

// Open returns an Ingestor over cat that keeps its log and checkpoints in dir ("" for none:
// state lives in memory only and nothing survives a restart). It recovers what dir holds:
// the last checkpoint, then every WAL record after it, so call Open after the catalog is
// loaded (state is keyed by the catalog's item ids). cfg's zero fields get the defaults.
func Open(dir string, cfg Config, cat *catalog.Catalog) (*Ingestor, error) {
	cfg.fill()
	st, err := NewState(cat, cfg.State)
	if err != nil {
		return nil, err
	}
	g := &Ingestor{cfg: cfg, dir: dir, cat: cat, state: st, pos: map[string]int64{}}
	g.cfg.State = st.cfg
	g.batches.New = func() any { return new(Batch) }
	g.bufs.New = func() any { b := make([]byte, 0, 4096); return &b }
	if dir == "" {
		return g, nil
	}
	start := time.Now()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot open events directory: %w", err)
	}
	seq := g.loadCheckpoint()
	log, err := wal.Open(filepath.Join(dir, "wal"), wal.Options{Sync: cfg.Sync, Interval: cfg.SyncInterval,
		SegmentBytes: cfg.SegmentBytes, MinSeq: seq + 1})
	if err != nil {
		return nil, err
	}
	g.log = log
	var evs []Event
	err = log.Replay(seq+1, func(rseq uint64, payload []byte) error {
		var err error
		evs, err = DecodeEvents(payload, evs[:0])
		if err != nil {
			return err
		}
		now := time.Now().UnixNano()
		for i := range evs {
			if g.resolve(&evs[i]) {
				st.apply(&evs[i], now, rseq <= g.kvSeq)
				g.recovery.Events++
			}
		}
		g.recovery.Records++
		return nil
	})
	if err != nil {
		log.Close()
		return nil, fmt.Errorf("cannot replay the events WAL: %w", err)
	}
	g.recovery.Took = time.Since(start)
	if cfg.CheckpointInterval > 0 {
		g.stop, g.loopDone = make(chan struct{}), make(chan struct{})
		go g.checkpointLoop(cfg.CheckpointInterval)
	}
	return g, nil
}

// State returns the real-time state the rank path reads.
func (g *Ingestor) State() *State { return g.state }

// Config returns the configuration after defaults.
func (g *Ingestor) Config() Config { return g.cfg }

// resolve sets e's dense item id and reports whether the item is known (always true for
// impressions, whose unknown items are skipped one by one).
func (g *Ingestor) resolve(e *Event) bool {
	if e.Type == TypeImpression {
		return true
	}
	id, ok := g.cat.Items().Lookup(e.ItemID)
	e.item = id
	return ok
}

// Ingest decodes body (a JSON array or NDJSON of events) received at now, validates every
// event, appends the accepted ones to the WAL under the fsync policy, applies them to the
// state and returns the counts and the rejected events. When it returns, the events are
// visible to every later read of State. A body that fails whole returns ErrEmptyBody,
// ErrBadBody or ErrTooManyEvents (answer 400 or 413), ErrWAL (answer 503: nothing was
// applied) or ErrClosed. Ingest does not retain body.
func (g *Ingestor) Ingest(body []byte, now time.Time) (Result, error) {
	return g.ingest(body, now, "", 0, true)
}

// IngestFrom is Ingest for events read from an external log such as Kafka: it skips the
// WAL (the external log is the log) and records pos as the position of source, atomically
// with the apply, so that the next checkpoint saves them together and Positions returns it
// after a restart. The caller passes the position to resume from (for Kafka, offset+1). A
// body that fails whole (not events JSON) still records pos, so the log moves past it.
func (g *Ingestor) IngestFrom(source string, pos int64, body []byte, now time.Time) (Result, error) {
	return g.ingest(body, now, source, pos, false)
}

// Positions returns the positions IngestFrom recorded, as restored by Open from the last
// checkpoint and advanced since.
func (g *Ingestor) Positions() map[string]int64 {
	g.posMu.Lock()
	defer g.posMu.Unlock()
	return maps.Clone(g.pos)
}

func (g *Ingestor) ingest(body []byte, now time.Time, source string, pos int64, useWAL bool) (Result, error) {
	if g.closed.Load() {
		return Result{}, ErrClosed
	}
	g.ctr.bodies.Add(1)
	b := g.batches.Get().(*Batch)
	defer func() { b.Reset(); g.batches.Put(b) }()
	if err := Decode(body, now, g.cfg.Decode, b); err != nil {
		g.ctr.failedBodies.Add(1)
		if source != "" {
			// Nothing to apply, but an external log must move past it.
			g.posMu.Lock()
			g.pos[source] = pos
			g.posMu.Unlock()
		}
		return Result{}, err
	}
	// Check items against the catalog; unknown ones are rejected like invalid events.
	w := 0
	moved := false
	for i := range b.Events {
		e := &b.Events[i]
		if !g.resolve(e) {
			b.reject(b.Index[i], e.Type, e.Type.String(), CodeUnknownItem,
				"unknown item %q; upsert it into the catalog first", clip(e.ItemID))
			moved = true
			continue
		}
		if w != i {
			b.Events[w], b.Events[i] = b.Events[i], b.Events[w]
			b.Index[w] = b.Index[i]
		}
		w++
	}
	b.Events, b.Index = b.Events[:w], b.Index[:w]
	if moved {
		slices.SortFunc(b.Rejected, func(x, y Rejection) int { return cmp.Compare(x.Index, y.Index) })
	}

	res := Result{Accepted: len(b.Events), Rejected: b.NRejected, RejectedByType: b.RejectedByType}
	for i := range b.Events {
		res.AcceptedByType[b.Events[i].Type]++
	}
	if len(b.Rejected) > 0 {
		res.Rejections = slices.Clone(b.Rejected)
	}
	for t, n := range b.RejectedByType {
		g.ctr.rejected[t].Add(uint64(n))
	}
	for i, n := range b.byCode {
		g.ctr.byCode[i].Add(uint64(n))
	}

	g.ck.RLock()
	if g.closed.Load() {
		g.ck.RUnlock()
		return Result{}, ErrClosed
	}
	if useWAL && g.log != nil && len(b.Events) > 0 {
		bp := g.bufs.Get().(*[]byte)
		*bp = AppendEvents((*bp)[:0], b.Events)
		seq, err := g.log.Append(*bp)
		g.bufs.Put(bp)
		if err != nil {
			g.ck.RUnlock()
			g.ctr.failedBodies.Add(1)
			return Result{}, fmt.Errorf("%w: %v", ErrWAL, err)
		}
		res.WALSeq = seq
	}
	nowNS := now.UnixNano()
	catchUp := false
	if source != "" {
		if end, ok := g.kvPos[source]; ok && pos <= end {
			catchUp = true
		}
	}
	for i := range b.Events {
		g.state.apply(&b.Events[i], nowNS, catchUp)
	}
	if source != "" {
		g.posMu.Lock()
		g.pos[source] = pos
		g.posMu.Unlock()
	}
	g.ck.RUnlock()

	applied := time.Now().UnixNano()
	for i := range b.Events {
		g.ctr.accepted[b.Events[i].Type].Add(1)
		g.ctr.lag.observe(time.Duration(applied - b.Events[i].TS))
	}
	return res, nil
}

// Metrics returns a snapshot of the ingestor's counters at now.
func (g *Ingestor) Metrics(now time.Time) Metrics {
	m := Metrics{RejectedByCode: map[string]uint64{}}
	for t := range NumTypes {
		m.ByType = append(m.ByType, TypeCounts{Type: t.String(), Accepted: g.ctr.accepted[t].Load(), Rejected: g.ctr.rejected[t].Load()})
	}
	for i, c := range codes {
		if n := g.ctr.byCode[i].Load(); n > 0 {
			m.RejectedByCode[c] = n
		}
	}
	m.Bodies, m.FailedBodies = g.ctr.bodies.Load(), g.ctr.failedBodies.Load()
	m.LagP50, m.LagP99, m.LagMax = g.ctr.lag.quantile(0.5), g.ctr.lag.quantile(0.99), time.Duration(g.ctr.lag.max.Load())
	m.SinceLastApply, m.NewestEventAge = g.state.Staleness(now)
	m.CatalogErrors = g.state.catalogErr.Load()
	m.Duplicates = g.state.dups.Load()
	if g.log != nil {
		m.WAL = g.log.Stats()
	}
	m.Sessions = g.state.SessionStats()
	m.Exclusions = g.state.ExclusionStats()
	m.CoVisitItems, m.CoVisitPairs = g.state.CoVisitSize()
	m.Checkpoints = g.checkpoints.Load()
	if t := g.lastCk.Load(); t != 0 {
		m.LastCheckpoint = time.Unix(0, t)
	}
	m.CheckpointPause = time.Duration(g.ckPause.Load())
	m.Recovery = g.recovery
	return m
}

func (g *Ingestor) checkpointLoop(every time.Duration) {
	defer close(g.loopDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
			_ = g.Checkpoint() // a failed checkpoint leaves the previous one and the WAL intact
		}
	}
}

// Close stops the background checkpoints, waits for ingests in flight, writes a final
// checkpoint (unless Config.NoCheckpointOnClose) and closes the WAL. Later Ingest calls
// return ErrClosed; reads of State keep working.
func (g *Ingestor) Close() error {
	if g.closed.Swap(true) {
		return nil
	}
	if g.stop != nil {
		close(g.stop)
		<-g.loopDone
	}
	var err error
	if g.dir != "" && !g.cfg.NoCheckpointOnClose {
		err = g.checkpoint(true)
	}
	if g.log != nil {
		if cerr := g.log.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
