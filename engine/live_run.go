package engine

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/podium-rank/podium/engine/pipeline"
	"github.com/podium-rank/podium/engine/plugin"
	"github.com/podium-rank/podium/engine/registry"
	"github.com/podium-rank/podium/engine/registry/compare"
)

// The request path of live plugin operations. Each stage of the live pipeline is a slot
// holding an atomic pointer to its assignment (champion, challengers, settings), which is
// immutable once published. A request takes a reference on every slot's assignment for
// the whole pipeline run, so a swap never changes what a request in flight runs; the
// last reference to a replaced assignment retires it in the background (closing plugins
// no other assignment uses). See RATIONALE.md, "Why slots with reference-counted
// assignments?".

// slot is one stage of the live pipeline. Its assignment pointer is never nil once the
// slot is published.
type slot struct {
	name string
	kind pipeline.Kind
	cur  atomic.Pointer[assignment]
}

// acquire returns the current assignment with a reference taken; release it with
// assignment.release.
func (s *slot) acquire() *assignment {
	for {
		a := s.cur.Load()
		n := a.refs.Load()
		// n == 0 means a was retired between the Load and here; the slot already holds
		// its successor, so load again.
		if n > 0 && a.refs.CompareAndSwap(n, n+1) {
			return a
		}
	}
}

// assignment is what one slot runs: immutable after it is published.
type assignment struct {
	lv   *Live
	slot *slot
	// refs is 1 while published (the slot's own reference) plus one per request or
	// shadow job holding it. It reaches 0 once: then the assignment retires.
	refs atomic.Int64

	st       registry.Stage
	fallback pipeline.Fallback
	cut      int
	champion *variant
	splits   []*variant
	splitEnd []uint64 // cumulative share thresholds in [0, 2^64), parallel to splits
	shadows  []*variant
	shadowP  []uint64 // sampling thresholds, parallel to shadows
	pairs    []*compare.Pair
	anyShade uint64 // the largest shadow threshold
	salt     string
}

// release drops a reference; the last one retires the assignment off the request path.
func (a *assignment) release() {
	if a.refs.Add(-1) == 0 {
		a.lv.retiring.Add(1)
		go a.lv.retire(a)
	}
}

// variants lists every variant of a, champion first.
func (a *assignment) variants() []*variant {
	vs := append([]*variant{a.champion}, a.splits...)
	return append(vs, a.shadows...)
}

// variant is one started implementation of a stage (a plugin started with params, or a
// native stage) in one role. Assignments that keep it share it; it is closed when the
// last of them retires.
type variant struct {
	key     string // identity for reuse across assignments
	name    string // "champion" or the challenger's name
	mode    string // "", registry.ModeShadow or registry.ModeSplit
	share   float64
	version string // full version, or "native:..."
	info    pipeline.StageInfo
	stage   pipeline.Stage
	pl      *plugin.Plugin // nil for native stages
	release func()         // releases the compiled module; nil for native stages
	users   int            // assignments holding it; under Live.mu
	label   string         // "stage:name", the request-level variant of a split
	canary  *registry.Canary
	win     *compare.Window
}

// liveRun is one request's view of the live pipeline. It lives in the pooled Ranking, so
// the request path allocates nothing.
type liveRun struct {
	pipe    pipeline.Pipeline
	steps   []liveStep
	held    []*assignment
	variant string
}

// liveStep runs one variant for one request as a pipeline.Stage, measuring it and, when
// the request was sampled, handing a copy of its input and output to the shadow workers.
type liveStep struct {
	lv     *Live
	a      *assignment
	v      *variant
	shadow uint64 // the request's shadow draw; sampled for challengers whose threshold exceeds it
	sample bool
}

// Info implements pipeline.Stage: the variant that actually runs, with its version.
func (s *liveStep) Info() pipeline.StageInfo { return s.v.info }

// Run implements pipeline.Stage.
func (s *liveStep) Run(env *pipeline.Env, l *pipeline.List) error {
	var job *shadowJob
	if s.sample {
		if s.lv.queueFull() {
			s.lv.drop(s.a, s.shadow) // do not copy what would be dropped
		} else {
			job = s.lv.snapshot(env, l, s.a, s.shadow)
		}
	}
	t0 := time.Now()
	err := s.v.stage.Run(env, l)
	now := time.Now()
	run := compare.Run{Took: now.Sub(t0), Fault: isFault(err), FellBack: err != nil}
	s.v.win.Record(now, run)
	if job != nil {
		job.champRun, job.champOK = run, err == nil
		if err == nil {
			job.champ.IDs = append(job.champ.IDs[:0], l.IDs...)
			job.champ.Scores = append(job.champ.Scores[:0], l.Scores...)
		}
		s.lv.enqueue(job)
	}
	return err
}

// isFault reports whether err is the plugin's fault (as opposed to, say, a draining
// plugin or a bad input).
func isFault(err error) bool {
	if err == nil {
		return false
	}
	return asFault(err)
}

// asFault is isFault's slow path, apart so that the successful run does not allocate
// errors.As's target.
func asFault(err error) bool {
	var fe *plugin.FaultError
	return errors.As(err, &fe)
}

// run ranks l through the live pipeline: it picks each stage's variant for the request
// (a split challenger by the sticky user hash, else the champion), samples shadows, runs
// the pipeline on the assignments it holds and releases them.
func (lv *Live) run(env *pipeline.Env, l *pipeline.List, res *pipeline.Result, run *liveRun) {
	t := lv.tmpl.Load()
	n := len(t.slots)
	if cap(run.steps) < n {
		run.steps = make([]liveStep, n)
	}
	run.steps = run.steps[:n]
	run.pipe.Steps = run.pipe.Steps[:0]
	run.held = run.held[:0]
	run.variant = ChampionVariant
	who := env.Request.UserID
	if who == "" {
		who = env.Request.SessionID
	}
	others := 0
	for i, s := range t.slots {
		a := s.acquire()
		run.held = append(run.held, a)
		st := liveStep{lv: lv, a: a, v: a.champion}
		if len(a.splits) > 0 && who != "" {
			h := splitHash(a.salt, who)
			for j, end := range a.splitEnd {
				if h < end {
					st.v = a.splits[j]
					break
				}
			}
		}
		if st.v != a.champion {
			if others++; others == 1 {
				run.variant = st.v.label
			} else {
				run.variant += "," + st.v.label
			}
		} else if a.anyShade > 0 {
			st.shadow = rand.Uint64()
			st.sample = st.shadow < a.anyShade
		}
		run.steps[i] = st
		run.pipe.Steps = append(run.pipe.Steps, pipeline.Step{Stage: &run.steps[i], Fallback: a.fallback, Cut: a.cut})
	}
	run.pipe.Run(env, l, res)
	for i, a := range run.held {
		a.release()
		run.held[i] = nil
		run.steps[i] = liveStep{}
	}
	for i := range run.pipe.Steps {
		run.pipe.Steps[i] = pipeline.Step{}
	}
}

// ChampionVariant is the request-level variant of a request that every stage's champion
// served.
const ChampionVariant = "champion"

// splitHash is the sticky hash of a user (or session) for a stage's traffic split:
// FNV-1a over salt, a zero byte and id, then a 64-bit finaliser so that every bit is
// mixed. It is stable across restarts and machines.
func splitHash(salt, id string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(salt); i++ {
		h = (h ^ uint64(salt[i])) * 1099511628211
	}
	h = (h ^ 0) * 1099511628211
	for i := 0; i < len(id); i++ {
		h = (h ^ uint64(id[i])) * 1099511628211
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// threshold maps a share in [0, 1] to a threshold on uniform 64-bit values.
func threshold(share float64) uint64 {
	if share >= 1 {
		return math.MaxUint64
	}
	if share <= 0 {
		return 0
	}
	return uint64(math.Ldexp(share, 64))
}

// SplitVariant returns the challenger of stage that serves the user (or, for an
// anonymous request, the session) now, or ChampionVariant. It is what the request path
// computes, exposed so that callers can predict assignments. It is goroutine-safe.
func (lv *Live) SplitVariant(stage, userID, sessionID string) string {
	who := userID
	if who == "" {
		who = sessionID
	}
	for _, s := range lv.tmpl.Load().slots {
		if s.name != stage {
			continue
		}
		a := s.acquire()
		defer a.release()
		if who == "" || len(a.splits) == 0 {
			return ChampionVariant
		}
		h := splitHash(a.salt, who)
		for j, end := range a.splitEnd {
			if h < end {
				return a.splits[j].name
			}
		}
	}
	return ChampionVariant
}

// variantLabel returns the request-level label of a split challenger.
func variantLabel(stage, name string) string { return stage + ":" + name }

// labelStage returns the stage of a request-level label ("rank:b" -> "rank", "b").
func labelStage(label string) (string, string, bool) { return strings.Cut(label, ":") }
