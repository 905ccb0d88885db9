package compare

import (
	"math"
	"sync"
	"sync/atomic"
)

// Ranking is one stage's output for one request: candidate ids best first, with their
// scores (parallel slices).
type Ranking struct {
	IDs    []uint32
	Scores []float32
}

// MaxTauK bounds how many of the champion's top items Kendall tau is computed over, so a
// comparison costs at most MaxTauK² steps.
const MaxTauK = 100

// Result is the comparison of two rankings of one request.
type Result struct {
	// K is the depth compared: the request's k, at most the champion's list length.
	K int
	// Overlap is the share of the champion's top K that is also in the challenger's top K.
	Overlap float64
	// Tau is Kendall's tau-b between the champion's order of its top min(K, MaxTauK) items
	// and the challenger's order of the same items (an item the challenger dropped ranks
	// last); TauOK is false when it is undefined (fewer than two items, or all tied).
	Tau   float64
	TauOK bool
	// MeanAbsDelta is the mean |champion score - challenger score| over the candidates
	// both kept; DeltaOK is false when they kept none in common.
	MeanAbsDelta float64
	DeltaOK      bool
}

// Scratch holds the buffers of Compare. The zero value is ready; it is not goroutine-safe.
type Scratch struct {
	pos map[uint32]int32
	ys  []int32
}

// Compare compares the challenger's ranking with the champion's at depth k.
func Compare(champ, chal Ranking, k int, s *Scratch) Result {
	if s.pos == nil {
		s.pos = make(map[uint32]int32, len(chal.IDs))
	}
	clear(s.pos)
	for i, id := range chal.IDs {
		if _, dup := s.pos[id]; !dup {
			s.pos[id] = int32(i)
		}
	}
	k = min(k, len(champ.IDs))
	res := Result{K: k}
	if k <= 0 {
		res.Overlap = 1
	} else {
		hit := 0
		for _, id := range champ.IDs[:k] {
			if p, ok := s.pos[id]; ok && int(p) < k {
				hit++
			}
		}
		res.Overlap = float64(hit) / float64(k)
	}
	// Kendall tau-b: x is the champion's rank (no ties), y the challenger's.
	m := min(k, MaxTauK)
	ys := s.ys[:0]
	for _, id := range champ.IDs[:m] {
		p, ok := s.pos[id]
		if !ok {
			p = int32(len(chal.IDs))
		}
		ys = append(ys, p)
	}
	s.ys = ys
	var conc, disc, tiesY int64
	for i := 0; i < m; i++ {
		for j := i + 1; j < m; j++ {
			switch {
			case ys[i] < ys[j]:
				conc++
			case ys[i] > ys[j]:
				disc++
			default:
				tiesY++
			}
		}
	}
	n0 := int64(m) * int64(m-1) / 2
	if den := math.Sqrt(float64(n0) * float64(n0-tiesY)); den > 0 {
		res.Tau, res.TauOK = float64(conc-disc)/den, true
	}
	var sum float64
	n := 0
	for i, id := range champ.IDs {
		p, ok := s.pos[id]
		if !ok || i >= len(champ.Scores) || int(p) >= len(chal.Scores) {
			continue
		}
		d := math.Abs(float64(champ.Scores[i]) - float64(chal.Scores[p]))
		if !math.IsNaN(d) && !math.IsInf(d, 0) {
			sum += d
			n++
		}
	}
	if n > 0 {
		res.MeanAbsDelta, res.DeltaOK = sum/float64(n), true
	}
	return res
}

// Pair accumulates the comparison of one challenger with its champion over the requests
// both ran on. It is goroutine-safe.
type Pair struct {
	sampled atomic.Uint64
	dropped atomic.Uint64

	mu                 sync.Mutex
	compared           uint64
	overlapSum         float64
	tauSum             float64
	tauN               uint64
	deltaSum           float64
	deltaN             uint64
	champion, challger Totals
}

// Sampled counts a request sampled for shadowing; Dropped one whose shadow work was
// dropped because the queue was full.
func (p *Pair) Sampled() { p.sampled.Add(1) }

// Dropped counts shadow work dropped because the queue was full.
func (p *Pair) Dropped() { p.dropped.Add(1) }

// Add records one request: both runs, and the comparison if the challenger produced a
// ranking (ok).
func (p *Pair) Add(champ, chal Run, res Result, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.champion.Add(champ)
	p.challger.Add(chal)
	if !ok {
		return
	}
	p.compared++
	p.overlapSum += res.Overlap
	if res.TauOK {
		p.tauSum += res.Tau
		p.tauN++
	}
	if res.DeltaOK {
		p.deltaSum += res.MeanAbsDelta
		p.deltaN++
	}
}

// PairStats is a JSON-ready snapshot of a Pair.
type PairStats struct {
	// Sampled counts requests picked for shadowing; Dropped those whose shadow work was
	// dropped because the queue was full; Compared those whose outputs were compared.
	Sampled  uint64 `json:"sampled"`
	Dropped  uint64 `json:"dropped"`
	Compared uint64 `json:"compared"`
	// OverlapAtK is the mean overlap of the top k (the request's k).
	OverlapAtK float64 `json:"overlap_at_k"`
	// KendallTau is the mean Kendall tau-b over the champion's top k (at most MaxTauK).
	KendallTau float64 `json:"kendall_tau"`
	// MeanAbsScoreDelta is the mean over requests of the mean |score difference|.
	MeanAbsScoreDelta float64 `json:"mean_abs_score_delta"`
	// Champion and Challenger summarise both sides' runs on the shadowed requests.
	Champion   Summary `json:"champion"`
	Challenger Summary `json:"challenger"`
}

// Stats returns a snapshot.
func (p *Pair) Stats() PairStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := PairStats{Sampled: p.sampled.Load(), Dropped: p.dropped.Load(), Compared: p.compared,
		Champion: p.champion.Summary(), Challenger: p.challger.Summary()}
	if p.compared > 0 {
		s.OverlapAtK = p.overlapSum / float64(p.compared)
	}
	if p.tauN > 0 {
		s.KendallTau = p.tauSum / float64(p.tauN)
	}
	if p.deltaN > 0 {
		s.MeanAbsScoreDelta = p.deltaSum / float64(p.deltaN)
	}
	return s
}
