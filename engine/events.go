package engine

import (
	"fmt"
	"time"

	"github.com/podium-rank/podium/engine/events"
	"github.com/podium-rank/podium/engine/stages"
)

// OpenEvents starts real-time event ingestion with its write-ahead log and checkpoints in
// dir ("" keeps state in memory only). Call it after the initial catalog load and before
// SetReady: it replays what dir holds, which refers to catalog items. From then on events
// change the very next ranking: session vectors, exclusions, co-visitation candidates,
// live popularity and real-time features.
func (e *Engine) OpenEvents(dir string, cfg events.Config) error {
	g, err := events.Open(dir, cfg, e.cat)
	if err != nil {
		return fmt.Errorf("cannot open events in %q: %w", dir, err)
	}
	e.ev.Store(g)
	e.refreshPopularity(time.Now())
	if e.defaultPipe.Load() {
		e.pipe.Store(e.defaultPipeline())
	}
	return nil
}

// Events returns the event ingestor, or nil before OpenEvents.
func (e *Engine) Events() *events.Ingestor { return e.ev.Load() }

// Close closes live operations (when open), stops event ingestion, writing a checkpoint,
// and retires every plugin.
func (e *Engine) Close() error {
	var err error
	if lv := e.live.Load(); lv != nil {
		err = lv.Close()
	}
	if g := e.ev.Load(); g != nil {
		if gerr := g.Close(); err == nil {
			err = gerr
		}
	}
	if perr := e.closePlugins(); err == nil {
		err = perr
	}
	return err
}

// refreshPopularity rebuilds the popularity order, blending live event counts when events
// are open.
func (e *Engine) refreshPopularity(now time.Time) {
	if g := e.ev.Load(); g != nil {
		e.pop.SetScore(g.State().PopularityScore(eventClock(g.State(), now)))
		e.pop.Refresh(true)
		return
	}
	e.pop.Refresh(false)
}

// realtime adapts the event state to stages.Realtime.
type realtime struct{ st *events.State }

func (r realtime) Column(name string) (int, bool) { return r.st.FeatureColumn(name) }

func (r realtime) Gather(ids []uint32, cols []int, now int64, dst []float32) []float32 {
	return r.st.Gather(ids, cols, time.UnixMicro(now), dst)
}

// Sources returns where stages read features from: the catalog, the event state (once
// open) and the popularity retriever.
func (e *Engine) Sources() stages.Sources {
	src := stages.Sources{Catalog: e.cat, Popularity: e.pop.Score}
	if g := e.ev.Load(); g != nil {
		src.Realtime = realtime{g.State()}
	}
	return src
}

// eventClock returns the time real-time state is read at: the wall clock, unless the events
// carry times in the past (a replay of a historical log), in which case the newest event
// time plus the time since it was applied. Decayed counts, session recency and exclusion
// windows then mean the same in a replay as they did live, instead of having decayed to
// nothing by today. RATIONALE.md, "Why an event clock?".
func eventClock(st *events.State, wall time.Time) time.Time {
	sinceApply, newestAge := st.Staleness(wall)
	if lag := newestAge - sinceApply; lag > time.Minute {
		return wall.Add(-lag)
	}
	return wall
}
