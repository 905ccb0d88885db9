package engine

import (
	"fmt"
	"strconv"
	"time"

	"github.com/podium-rank/podium/engine/events"
	"github.com/podium-rank/podium/engine/features"
	"github.com/podium-rank/podium/engine/pipeline"
	"github.com/podium-rank/podium/engine/retrieval"
)

// RankRequest is one decoded ranking request. The server fills it from JSON; its strings
// are only borrowed for the duration of Rank.
type RankRequest struct {
	UserID    string
	SessionID string
	K         int // 0 means DefaultK
	Context   []pipeline.ContextValue
	Exclude   []string
	// Candidates, when HasCandidates is set, are the items to rerank; retrieval is skipped.
	Candidates    []string
	HasCandidates bool
}

// Reset empties r for reuse, keeping capacity.
func (r *RankRequest) Reset() {
	*r = RankRequest{Context: r.Context[:0], Exclude: r.Exclude[:0], Candidates: r.Candidates[:0]}
}

// RequestError is a client mistake in a request: the server answers it with 400 and this
// code and message.
type RequestError struct {
	Code    string
	Message string
}

// Error implements error.
func (e *RequestError) Error() string { return e.Code + ": " + e.Message }

func invalid(format string, args ...any) *RequestError {
	return &RequestError{Code: "invalid_argument", Message: fmt.Sprintf(format, args...)}
}

// Ranking is the outcome of one Rank call. It is pooled: read it, then hand it back with
// Engine.Release, after which it must not be used.
type Ranking struct {
	// RequestID identifies the request in logs, events and impressions.
	RequestID []byte
	// List holds the ranked items, best first; List.IDs are dense ids (see ItemID).
	List pipeline.List
	// Result says how each stage went.
	Result pipeline.Result
	// Retrieved is the number of candidates before ranking.
	Retrieved int
	// Warnings are notes for the caller, such as unknown candidate ids.
	Warnings []string
	// TookUS is the time Rank took, in microseconds.
	TookUS int64
	// Variant names what served the request: "champion", or the stage:challenger labels
	// of the traffic splits that chose it (e.g. "rank:b"). Result.Stages names each
	// stage's variant and version.
	Variant string

	e       *Engine
	env     pipeline.Env
	scratch retrieval.Scratch
	sig     retrieval.Signals
	cands   []uint32
	sess    []float32
	cov     []events.Scored
	recent  []events.Scored
	seed    [1]uint32
	live    liveRun
}

func newRanking() any { return &Ranking{} }

// ItemID returns the string id of the i-th ranked item.
func (r *Ranking) ItemID(i int) string { return r.e.cat.ItemName(r.List.IDs[i]) }

// Release returns a Ranking to the pool.
func (e *Engine) Release(r *Ranking) { e.pool.Put(r) }

var clockStart = time.Now()

func monoMicros() int64 { return int64(time.Since(clockStart) / time.Microsecond) }

// Rank ranks items for req. It returns a *RequestError for a client mistake; any other
// failure inside (a plugin fault) falls back and is reported in the Ranking instead.
func (e *Engine) Rank(req *RankRequest) (*Ranking, error) {
	t0 := monoMicros()
	k := req.K
	if k == 0 {
		k = DefaultK
	}
	if k < 1 || k > MaxK {
		return nil, invalid("k must be between 1 and %d, got %d", MaxK, req.K)
	}
	if len(req.Exclude) > e.cfg.MaxExclude {
		return nil, invalid("exclude lists %d ids; at most %d are allowed", len(req.Exclude), e.cfg.MaxExclude)
	}
	if req.HasCandidates && len(req.Candidates) > e.cfg.MaxCandidates {
		return nil, invalid("candidates lists %d ids; at most %d are allowed", len(req.Candidates), e.cfg.MaxCandidates)
	}
	if req.HasCandidates && len(req.Candidates) == 0 {
		return nil, invalid("candidates is empty; leave it out to let the engine retrieve candidates")
	}

	r := e.pool.Get().(*Ranking)
	r.e = e
	r.List.Reset()
	r.Result.Reset()
	r.Warnings = r.Warnings[:0]
	r.env.Reset()
	env := &r.env
	env.Items = e.cat
	env.Clock = monoMicros
	pr := &env.Request
	pr.K = k
	pr.UserID, pr.SessionID = req.UserID, req.SessionID
	pr.Context = append(pr.Context, req.Context...)
	pr.Rerank = req.HasCandidates
	if req.UserID != "" {
		pr.User, pr.KnownUser = e.cat.Users().Lookup(req.UserID)
	}
	items := e.cat.Items()
	for _, s := range req.Exclude {
		if id, ok := items.Lookup(s); ok {
			pr.Exclude = append(pr.Exclude, id)
		}
	}
	r.sig = retrieval.Signals{}
	if s, ok := pr.ContextString("item_id"); ok {
		if id, ok := items.Lookup(s); ok {
			r.sig.ContextItem, r.sig.HasContextItem = id, true
			// The item being viewed is not recommended back.
			pr.Exclude = append(pr.Exclude, id)
		}
	}
	r.RequestID = strconv.AppendUint(append(append(r.RequestID[:0], e.idPfx...), '-'), e.seq.Add(1), 16)
	pr.ID = ""

	var user *features.UserRow
	if pr.KnownUser && e.cat.User(pr.User, &env.User) {
		env.HasUser, user = true, &env.User
	}
	now := time.Now()
	ev := e.ev.Load()
	if ev != nil {
		now = eventClock(ev.State(), now)
	}
	env.Now = now.UnixMicro()
	r.recent = r.recent[:0]
	if ev != nil {
		st := ev.State()
		r.sess = st.SessionVector(pr.UserID, pr.SessionID, now, r.sess)
		r.sig.Session = r.sess
		pr.Exclude = st.AppendExcluded(pr.UserID, pr.SessionID, now, pr.Exclude)
		var seeds []uint32
		if r.sig.HasContextItem {
			r.seed[0] = r.sig.ContextItem
			seeds = r.seed[:]
		}
		r.cov = st.SessionCoVisited(pr.UserID, pr.SessionID, seeds, now, e.cfg.CoVisitCandidates, r.cov[:0])
		if len(r.cov) > 0 && r.cov[0].Score > 0 {
			top := r.cov[0].Score
			for _, c := range r.cov {
				env.CoVisit.Put(c.ID, min(1, c.Score/top))
			}
		}
		r.recent = st.SessionItems(pr.UserID, pr.SessionID, now, e.cfg.SessionCandidates, r.recent[:0])
		for _, c := range r.recent {
			env.Recent.Put(c.ID, c.Score)
		}
	}
	if ai, ok := e.cat.AttributeIndex(e.cfg.AffinityAttribute); ok {
		a := &env.Affinity
		a.Attr = ai
		if r.sig.HasContextItem {
			a.Add(e.cat.AttributeCode(ai, r.sig.ContextItem), 1)
		}
		for _, c := range r.recent {
			a.Add(e.cat.AttributeCode(ai, c.ID), c.Score)
		}
		a.Normalize()
	}
	q, src := e.ret.Query(user, &r.sig, &r.scratch, env.Query)
	env.Query = q
	if req.HasCandidates {
		r.cands = r.cands[:0]
		unknown := 0
		for _, s := range req.Candidates {
			if id, ok := items.Lookup(s); ok {
				r.cands = append(r.cands, id)
			} else {
				unknown++
			}
		}
		if unknown > 0 {
			r.Warnings = append(r.Warnings, fmt.Sprintf("%d of %d candidates are unknown items and were skipped", unknown, len(req.Candidates)))
		}
		e.ret.Rerank(r.cands, q, &r.scratch, &r.List)
	} else {
		e.ret.Retrieve(pr, q, src, &env.CoVisit, &env.Recent, &env.Affinity, &r.scratch, &r.List)
	}
	r.Retrieved = r.List.Len()
	r.Variant = ChampionVariant
	if lv := e.live.Load(); lv != nil {
		lv.run(env, &r.List, &r.Result, &r.live)
		r.Variant = r.live.variant
	} else {
		e.pipe.Load().Run(env, &r.List, &r.Result)
	}
	e.stats.Requests.Add(1)
	if r.Result.FellBack {
		e.stats.FellBack.Add(1)
	}
	if ev != nil {
		ev.State().RecordServed(r.RequestID, r.Variant, pr.UserID, pr.SessionID, r.List.IDs, now)
	}
	r.TookUS = monoMicros() - t0
	return r, nil
}
