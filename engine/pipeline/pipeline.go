// Package pipeline turns a request and its candidates into a ranked top-k list by running
// stages (rank -> business rules -> diversity) and then the host's guarantees. It is a
// deterministic function of its inputs: no network, disk or clock inside it.
package pipeline

import (
	"errors"
	"fmt"
	"math"
	"sort"
)

// Source records which retriever produced a candidate. Plugins see it as the "retriever"
// feature.
type Source uint8

// Retrievers.
const (
	SourceNone     Source = iota
	SourceANN             // nearest neighbours of the user (or blended) query vector
	SourcePopular         // the popularity retriever
	SourceItem            // neighbours of the context item
	SourceSession         // neighbours of the session's recent items
	SourceRequest         // given by the caller (rerank mode)
	SourceCoVisit         // items co-interacted with the session's recent items
	SourceRecent          // the session's own recent items (people come back to them)
	SourceAffinity        // popular items of the attribute values (categories) the session is into
	NumSources            // number of sources; not a source
)

var sourceNames = [NumSources]string{"none", "ann", "popular", "item", "session", "request", "covisit", "recent", "affinity"}

// String returns the source's name.
func (s Source) String() string {
	if s < NumSources {
		return sourceNames[s]
	}
	return fmt.Sprintf("source(%d)", s)
}

// Kind is a stage kind.
type Kind uint8

// Stage kinds, in the order a pipeline runs them.
const (
	KindRank Kind = iota
	KindRules
	KindDiversity
)

var kindNames = [...]string{"rank", "rules", "diversity"}

// String returns the kind's name as used in configs and manifests.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// ParseKind parses a stage kind name.
func ParseKind(s string) (Kind, error) {
	for i, n := range kindNames {
		if n == s {
			return Kind(i), nil
		}
	}
	return 0, fmt.Errorf("pipeline: unknown stage kind %q (want rank, rules or diversity)", s)
}

// ContextValue is one entry of the request's flat context: a string or a number.
type ContextValue struct {
	Key   string
	Str   string
	Num   float64
	IsNum bool
}

// Request is one ranking request with its ids resolved to dense ids.
type Request struct {
	ID        string
	UserID    string
	User      uint32 // dense user id; valid when KnownUser
	KnownUser bool
	SessionID string
	K         int
	Context   []ContextValue
	Exclude   []uint32 // dense ids of known excluded items
	Rerank    bool     // the caller gave the candidates
}

// Reset empties r for reuse, keeping capacity.
func (r *Request) Reset() {
	*r = Request{Context: r.Context[:0], Exclude: r.Exclude[:0]}
}

// ContextString returns the string value of a context key.
func (r *Request) ContextString(key string) (string, bool) {
	for i := range r.Context {
		if r.Context[i].Key == key && !r.Context[i].IsNum {
			return r.Context[i].Str, true
		}
	}
	return "", false
}

// List is the candidate list a pipeline works on, as parallel columns. Stages reorder,
// rescore and drop entries; the columns always stay aligned.
type List struct {
	IDs       []uint32  // dense item ids
	Scores    []float32 // the current score; higher is better
	Retrieval []float32 // the retrieval score (similarity to the query, or popularity)
	Sources   []Source  // which retriever found each candidate
}

// Len returns the number of candidates.
func (l *List) Len() int { return len(l.IDs) }

// Reset empties the list, keeping capacity.
func (l *List) Reset() {
	l.IDs, l.Scores, l.Retrieval, l.Sources = l.IDs[:0], l.Scores[:0], l.Retrieval[:0], l.Sources[:0]
}

// Add appends one candidate whose score starts as its retrieval score.
func (l *List) Add(id uint32, retrieval float32, src Source) {
	l.IDs = append(l.IDs, id)
	l.Scores = append(l.Scores, retrieval)
	l.Retrieval = append(l.Retrieval, retrieval)
	l.Sources = append(l.Sources, src)
}

// Swap swaps candidates i and j.
func (l *List) Swap(i, j int) {
	l.IDs[i], l.IDs[j] = l.IDs[j], l.IDs[i]
	l.Scores[i], l.Scores[j] = l.Scores[j], l.Scores[i]
	l.Retrieval[i], l.Retrieval[j] = l.Retrieval[j], l.Retrieval[i]
	l.Sources[i], l.Sources[j] = l.Sources[j], l.Sources[i]
}

// Less orders by score descending, then by dense id, so that sorting is deterministic.
func (l *List) Less(i, j int) bool {
	if l.Scores[i] != l.Scores[j] {
		return l.Scores[i] > l.Scores[j]
	}
	return l.IDs[i] < l.IDs[j]
}

// SortByScore sorts the list by score, best first; ties go to the lower dense id.
func (l *List) SortByScore() { sort.Sort(l) }

// Truncate keeps the first n candidates.
func (l *List) Truncate(n int) {
	if n < l.Len() {
		l.IDs, l.Scores, l.Retrieval, l.Sources = l.IDs[:n], l.Scores[:n], l.Retrieval[:n], l.Sources[:n]
	}
}

// Keep compacts the list to the candidates for which keep(i) is true, preserving order.
func (l *List) Keep(keep func(i int) bool) {
	w := 0
	for i := range l.IDs {
		if keep(i) {
			l.IDs[w], l.Scores[w], l.Retrieval[w], l.Sources[w] = l.IDs[i], l.Scores[i], l.Retrieval[i], l.Sources[i]
			w++
		}
	}
	l.Truncate(w)
}

// Permute reorders the list so that new position p holds old candidate order[p]; order must
// be a permutation of a subset of positions (entries not named are dropped). scratch is
// reused between calls.
func (l *List) Permute(order []int32, scratch *List) {
	scratch.Reset()
	for _, o := range order {
		scratch.Add(l.IDs[o], l.Retrieval[o], l.Sources[o])
		scratch.Scores[len(scratch.Scores)-1] = l.Scores[o]
	}
	l.IDs = append(l.IDs[:0], scratch.IDs...)
	l.Scores = append(l.Scores[:0], scratch.Scores...)
	l.Retrieval = append(l.Retrieval[:0], scratch.Retrieval...)
	l.Sources = append(l.Sources[:0], scratch.Sources...)
}

// ErrStage marks errors that stages return to ask for their fallback.
var ErrStage = errors.New("pipeline: stage failed")

// Stage is one step of the pipeline. Run may reorder, rescore or drop candidates of l; it
// must leave the columns aligned. If it returns an error, the pipeline restores the list as
// it was before the stage and applies the stage's fallback. Implementations must be
// goroutine-safe: one Stage value serves all requests.
type Stage interface {
	// Info names the stage for the response's pipeline field.
	Info() StageInfo
	// Run applies the stage to l for the request in env.
	Run(env *Env, l *List) error
}

// StageInfo describes a stage for responses and the admin API.
type StageInfo struct {
	Name    string // the stage's name in the config, e.g. "rank"
	Kind    Kind
	Plugin  string // plugin (or native implementation) name
	Version string // plugin version: a sha256 prefix of the .wasm, or "native"
	Variant string // "champion", or the challenger's name when a traffic split chose it
}

// Fallback is what a failing stage leaves behind.
type Fallback uint8

// Fallbacks.
const (
	FallbackSkip      Fallback = iota // keep the list as it was before the stage
	FallbackRetrieval                 // order by retrieval score
)

// ParseFallback parses a fallback name from a config: "skip" or "retrieval".
func ParseFallback(s string) (Fallback, error) {
	switch s {
	case "", "skip":
		return FallbackSkip, nil
	case "retrieval":
		return FallbackRetrieval, nil
	}
	return 0, fmt.Errorf("pipeline: unknown fallback %q (want skip or retrieval)", s)
}

// Step is a stage with its operational settings.
type Step struct {
	Stage    Stage
	Fallback Fallback
	Cut      int // keep only the top Cut candidates after the stage (0 = all); rank stages only
}

// StageReport says how one stage went for one request.
type StageReport struct {
	StageInfo
	FellBack bool
	Error    string
	TookUS   int64
}

// Clock returns a monotonic time in microseconds. The pipeline never reads the wall clock
// itself; callers hand one in (or nil for no timings).
type Clock func() int64

// Pipeline is an ordered list of steps. It is immutable once built and goroutine-safe.
type Pipeline struct {
	Steps []Step
}

// Result is the outcome of one run.
type Result struct {
	Stages   []StageReport
	FellBack bool // some stage fell back
}

// Reset empties r for reuse.
func (r *Result) Reset() { r.Stages, r.FellBack = r.Stages[:0], false }

// Run ranks l in place for env's request: each step, then the host guarantees (Enforce).
// On return l holds at most env.Request.K candidates, best first.
func (p *Pipeline) Run(env *Env, l *List, res *Result) {
	for _, st := range p.Steps {
		rep := StageReport{StageInfo: st.Stage.Info()}
		var t0 int64
		if env.Clock != nil {
			t0 = env.Clock()
		}
		env.saved.copyFrom(l)
		if err := runStage(st.Stage, env, l); err != nil {
			rep.FellBack, rep.Error = true, err.Error()
			res.FellBack = true
			l.copyFrom(&env.saved)
			if st.Fallback == FallbackRetrieval {
				copy(l.Scores, l.Retrieval)
				l.SortByScore()
			}
		}
		if st.Cut > 0 {
			l.Truncate(st.Cut)
		}
		if env.Clock != nil {
			rep.TookUS = env.Clock() - t0
		}
		res.Stages = append(res.Stages, rep)
	}
	Enforce(env, l)
}

// runStage calls a stage, turning a panic in native stage code into an error so that one
// bad request cannot take the server down, and checks that it kept the list aligned and
// finite.
func runStage(s Stage, env *Env, l *List) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: panic: %v", ErrStage, r)
		}
	}()
	if err := s.Run(env, l); err != nil {
		return err
	}
	n := len(l.IDs)
	if len(l.Scores) != n || len(l.Retrieval) != n || len(l.Sources) != n {
		return fmt.Errorf("%w: columns out of step", ErrStage)
	}
	for _, s := range l.Scores {
		if math.IsNaN(float64(s)) {
			return fmt.Errorf("%w: NaN score", ErrStage)
		}
	}
	return nil
}

func (l *List) copyFrom(src *List) {
	l.IDs = append(l.IDs[:0], src.IDs...)
	l.Scores = append(l.Scores[:0], src.Scores...)
	l.Retrieval = append(l.Retrieval[:0], src.Retrieval...)
	l.Sources = append(l.Sources[:0], src.Sources...)
}

// Enforce applies what no stage may break: excluded, deleted and unavailable items are
// dropped, each id appears once (its first place wins), and at most K remain.
func Enforce(env *Env, l *List) {
	env.seen.Reset(len(env.Request.Exclude) + l.Len())
	for _, id := range env.Request.Exclude {
		env.seen.Set(id)
	}
	w := 0
	for i, id := range l.IDs {
		if w >= env.Request.K {
			break
		}
		if env.seen.Has(id) || !env.Items.Available(id) {
			continue
		}
		env.seen.Set(id)
		l.IDs[w], l.Scores[w], l.Retrieval[w], l.Sources[w] = id, l.Scores[i], l.Retrieval[i], l.Sources[i]
		w++
	}
	l.Truncate(w)
}
