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
	in := &j.in
	in.IDs = append(in.IDs[:0], l.IDs...)
	in.Scores = append(in.Scores[:0], l.Scores...)
	in.Retrieval = append(in.Retrieval[:0], l.Retrieval...)
	in.Sources = append(in.Sources[:0], l.Sources...)
	j.champ.IDs, j.champ.Scores = j.champ.IDs[:0], j.champ.Scores[:0]
	return j
}

// enqueue offers j to the shadow workers, dropping (and counting) it when the queue is
// full. It never blocks.
func (lv *Live) enqueue(j *shadowJob) {
	a := j.a
	for i, p := range a.shadowP {
		if j.draw < p {
			a.pairs[i].Sampled()
		}
	}
	select {
	case lv.jobs <- j:
		return
	default:
	}
	lv.dropped.Add(1)
	for i, p := range a.shadowP {
		if j.draw < p {
			a.pairs[i].Dropped()
		}
	}
	lv.putJob(j)
}

func (lv *Live) putJob(j *shadowJob) {
	a := j.a
	j.a = nil
	a.release()
	shadowJobs.Put(j)
}

// shadowWorker runs queued jobs until the queue is closed.
func (lv *Live) shadowWorker() {
	defer lv.workers.Done()
	var (
		work    pipeline.List
		scratch compare.Scratch
	)
	for j := range lv.jobs {
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
			err := runShadow(v.stage, &j.env, &work)
			now := time.Now()
			run := compare.Run{Took: now.Sub(t0), Fault: isFault(err), FellBack: err != nil}
			v.win.Record(now, run)
			ok := err == nil && j.champOK
			var res compare.Result
			if ok {
				res = compare.Compare(j.champ, compare.Ranking{IDs: work.IDs, Scores: work.Scores}, j.env.Request.K, &scratch)
			}
			a.pairs[i].Add(j.champRun, run, res, ok)
		}
		lv.putJob(j)
	}
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
