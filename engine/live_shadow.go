package engine

import (
	"strings"
	"sync"
	"time"

	"github.com/podium-rank/podium/engine/pipeline"
	"github.com/podium-rank/podium/engine/registry/compare"
)

// Shadow challengers run off the critical path: a sampled request copies the stage's
// input (candidates and the request's environment) and the champion's output into a
// pooled job and offers it to a bounded queue without blocking; a fixed number of workers
// run the challengers on the copy and compare. A full queue drops the job and counts it.
// See RATIONALE.md, "Why a bounded shadow queue that drops?".

// shadowJob is one sampled request of one stage.
type shadowJob struct {
	a        *assignment
	draw     uint64
	env      pipeline.Env
	in       pipeline.List // the candidates as the champion got them
	champ    compare.Ranking
	champRun compare.Run
	champOK  bool
}

var shadowJobs = sync.Pool{New: func() any { return new(shadowJob) }}

// snapshot copies what a challenger needs to rerun the stage: the list at stage entry and
// the parts of env that stages read. It takes a reference on a for the job. Strings are
// cloned: the request's strings are borrowed from the server's buffers.
func (lv *Live) snapshot(env *pipeline.Env, l *pipeline.List, a *assignment, draw uint64) *shadowJob {
	j := shadowJobs.Get().(*shadowJob)
	a.refs.Add(1) // the caller holds one, so a is not retired
	j.a, j.draw = a, draw
	e := &j.env
	e.Reset()
	e.Items = env.Items
	r := &e.Request
	src := &env.Request
	r.ID, r.UserID, r.SessionID = "", strings.Clone(src.UserID), strings.Clone(src.SessionID)
	r.User, r.KnownUser, r.K, r.Rerank = src.User, src.KnownUser, src.K, src.Rerank
	for _, cv := range src.Context {
		cv.Key, cv.Str = strings.Clone(cv.Key), strings.Clone(cv.Str)
		r.Context = append(r.Context, cv)
	}
	e.Query = append(e.Query, env.Query...)
	e.HasUser = env.HasUser
	if env.HasUser {
		e.User.Cols = append(e.User.Cols, env.User.Cols...)
		e.User.Vals = append(e.User.Vals, env.User.Vals...)
		e.User.Emb = append(e.User.Emb, env.User.Emb...)
	}
	e.Now = env.Now
	for _, id := range env.CoVisit.IDs() {
		v, _ := env.CoVisit.Get(id)
		e.CoVisit.Put(id, v)
	}
	for _, id := range env.Recent.IDs() {
		v, _ := env.Recent.Get(id)
		e.Recent.Put(id, v)
	}
	e.Affinity.Attr = env.Affinity.Attr
	e.Affinity.Codes = append(e.Affinity.Codes, env.Affinity.Codes...)
	e.Affinity.W = append(e.Affinity.W, env.Affinity.W...)
	in := &j.in
	in.IDs = append(in.IDs[:0], l.IDs...)
	in.Scores = append(in.Scores[:0], l.Scores...)
	in.Retrieval = append(in.Retrieval[:0], l.Retrieval...)
	in.Sources = append(in.Sources[:0], l.Sources...)
	j.champ.IDs, j.champ.Scores = j.champ.IDs[:0], j.champ.Scores[:0]
	return j
}

// queueFull reports whether the shadow queue is full, so that a sampled request can drop
// its shadow work before copying anything.
func (lv *Live) queueFull() bool { return len(lv.jobs) == cap(lv.jobs) }

// drop counts a sampled request whose shadow work was dropped.
func (lv *Live) drop(a *assignment, draw uint64) {
	lv.dropped.Add(1)
	for i, p := range a.shadowP {
		if draw < p {
			a.pairs[i].Sampled()
			a.pairs[i].Dropped()
		}
	}
}

// enqueue offers j to the shadow workers, dropping (and counting) it when the queue is
// full. It never blocks.
func (lv *Live) enqueue(j *shadowJob) {
	a, draw := j.a, j.draw // j belongs to the worker once sent
	select {
	case lv.jobs <- j:
		for i, p := range a.shadowP {
			if draw < p {
				a.pairs[i].Sampled()
			}
		}
		return
	default:
	}
	lv.drop(a, draw)
	lv.putJob(j)
}

func (lv *Live) putJob(j *shadowJob) {
	a := j.a
	j.a = nil
	a.release()
	shadowJobs.Put(j)
}

// shadowIdle is how long an idle shadow worker sleeps before looking at the queue again.
// The worker never blocks on the queue itself: a request handing over a job to a blocked
// receiver would have to wake it (a futex call on the request path); sleeping on a timer
// keeps the hand-over a plain copy into the channel's buffer.
const shadowIdle = time.Millisecond

// shadowBurst bounds how long a worker runs jobs back to back before it sleeps. While a
// goroutine keeps a P busy, that P does not poll the network (runtime.Gosched goes
// straight back to the worker through the global run queue), so a long burst delays the
// requests arriving meanwhile by its length; short bursts and real sleeps bound that.
const shadowBurst = 100 * time.Microsecond

// shadowWorker runs queued jobs until Close, while the machine has idle CPU
// (LiveConfig.ShadowMinIdle) and within its share of LiveConfig.ShadowCPU: after each job
// it owes (took / share - took) of sleep, paid at the latest when a burst reaches
// shadowBurst. While it sleeps the queue fills and requests drop their shadow work
// (counted) instead of competing for the CPU. See RATIONALE.md,
// "Why a bounded shadow queue that drops, a CPU budget, and no wake-ups?".
func (lv *Live) shadowWorker() {
	defer lv.workers.Done()
	var (
		work    pipeline.List
		scratch compare.Scratch
		debt    time.Duration
		burst   time.Duration
	)
	share := min(lv.cfg.ShadowCPU/float64(lv.cfg.ShadowWorkers), 1)
	gate := newIdleGate(lv.cfg.ShadowMinIdle)
	timer := time.NewTimer(shadowIdle)
	defer timer.Stop()
	sleep := func(d time.Duration) bool {
		timer.Reset(d)
		select {
		case <-lv.stop:
			// Drop what is left without running it: Close releases the assignments.
			for {
				select {
				case j := <-lv.jobs:
					lv.putJob(j)
				default:
					return false
				}
			}
		case <-timer.C:
			return true
		}
	}
	<-timer.C
	for {
		var j *shadowJob
		if burst < shadowBurst && gate.open(time.Now()) {
			select {
			case j = <-lv.jobs:
			default:
			}
		}
		if j == nil {
			if !sleep(max(shadowIdle, debt)) {
				return
			}
			debt, burst = 0, 0
			continue
		}
		t0 := time.Now()
		lv.runJob(j, &work, &scratch)
		took := time.Since(t0)
		burst += took
		debt += time.Duration(float64(took) * (1/share - 1))
	}
}

// runJob runs the sampled challengers of one job and records the comparisons.
func (lv *Live) runJob(j *shadowJob, work *pipeline.List, scratch *compare.Scratch) {
	a := j.a
	for i, v := range a.shadows {
		if j.draw >= a.shadowP[i] {
			continue
		}
		work.IDs = append(work.IDs[:0], j.in.IDs...)
		work.Scores = append(work.Scores[:0], j.in.Scores...)
		work.Retrieval = append(work.Retrieval[:0], j.in.Retrieval...)
		work.Sources = append(work.Sources[:0], j.in.Sources...)
		t0 := time.Now()
		err := runShadow(v.stage, &j.env, work)
		now := time.Now()
		run := compare.Run{Took: now.Sub(t0), Fault: isFault(err), FellBack: err != nil}
		v.win.Record(now, run)
		ok := err == nil && j.champOK
		var res compare.Result
		if ok {
			res = compare.Compare(j.champ, compare.Ranking{IDs: work.IDs, Scores: work.Scores}, j.env.Request.K, scratch)
		}
		a.pairs[i].Add(j.champRun, run, res, ok)
	}
	lv.putJob(j)
}

// runShadow runs a challenger's stage, turning a panic of a native stage into an error as
// the pipeline does.
func runShadow(s pipeline.Stage, env *pipeline.Env, l *pipeline.List) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = pipeline.ErrStage
		}
	}()
	return s.Run(env, l)
}
