package compare

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	rng := rand.New(rand.NewPCG(1, 2))
	var xs []time.Duration
	for range 10000 {
		d := time.Duration(rng.ExpFloat64() * float64(300*time.Microsecond))
		xs = append(xs, d)
		h.Record(d)
	}
	slices.Sort(xs)
	for _, q := range []float64{0.5, 0.9, 0.99, 1} {
		exact := xs[int(math.Ceil(q*float64(len(xs))))-1]
		got := h.Quantile(q)
		// The bucket's upper edge: never below the truth, at most 25% (+1µs) above.
		if got < exact.Truncate(time.Microsecond) || float64(got) > 1.25*float64(exact)+float64(time.Microsecond) {
			t.Errorf("q%v: got %v, exact %v", q, got, exact)
		}
	}
	if h.Count() != 10000 || h.Mean() <= 0 {
		t.Errorf("count %d mean %v", h.Count(), h.Mean())
	}
	var empty Histogram
	if empty.Quantile(0.99) != 0 || empty.Mean() != 0 {
		t.Error("empty histogram")
	}
	var small Histogram
	small.Record(2 * time.Microsecond)
	if small.Quantile(0.99) != 3*time.Microsecond {
		t.Errorf("2µs -> %v", small.Quantile(0.99))
	}
}

func TestCompare(t *testing.T) {
	var s Scratch
	f := func(champ, chal []uint32, k int, overlap, tau float64, tauOK bool) {
		t.Helper()
		sc := func(ids []uint32) []float32 {
			out := make([]float32, len(ids))
			for i := range ids {
				out[i] = float32(len(ids) - i)
			}
			return out
		}
		r := Compare(Ranking{champ, sc(champ)}, Ranking{chal, sc(chal)}, k, &s)
		if math.Abs(r.Overlap-overlap) > 1e-9 || r.TauOK != tauOK || tauOK && math.Abs(r.Tau-tau) > 1e-9 {
			t.Errorf("Compare(%v, %v, %d) = %+v, want overlap %v tau %v (%v)", champ, chal, k, r, overlap, tau, tauOK)
		}
	}
	f([]uint32{1, 2, 3, 4}, []uint32{1, 2, 3, 4}, 4, 1, 1, true)
	f([]uint32{1, 2, 3, 4}, []uint32{4, 3, 2, 1}, 4, 1, -1, true)
	f([]uint32{1, 2, 3, 4}, []uint32{5, 6, 7, 8}, 4, 0, 0, false) // all tied last: undefined
	f([]uint32{1, 2, 3, 4}, []uint32{1, 2, 4, 3}, 4, 1, 4.0/6, true)
	f([]uint32{1, 2, 3, 4}, []uint32{2, 1, 9, 9, 3, 4}, 2, 1, -1, true)
	f([]uint32{1, 2, 3, 4}, []uint32{1, 9, 2, 3}, 2, 0.5, 1, true)
	f(nil, nil, 10, 1, 0, false)
	// Score deltas over the common candidates.
	r := Compare(Ranking{[]uint32{1, 2, 3}, []float32{3, 2, 1}}, Ranking{[]uint32{3, 1}, []float32{5, 1}}, 3, &s)
	if !r.DeltaOK || math.Abs(r.MeanAbsDelta-3) > 1e-9 { // |3-1| and |1-5|
		t.Errorf("delta %+v", r)
	}
	r = Compare(Ranking{[]uint32{1}, []float32{1}}, Ranking{[]uint32{2}, []float32{1}}, 1, &s)
	if r.DeltaOK {
		t.Errorf("disjoint lists have a delta: %+v", r)
	}
}

func TestPairStats(t *testing.T) {
	var p Pair
	run := func(us int, fault bool) Run {
		return Run{Took: time.Duration(us) * time.Microsecond, Fault: fault, FellBack: fault}
	}
	p.Sampled()
	p.Sampled()
	p.Sampled()
	p.Dropped()
	p.Add(run(100, false), run(200, false), Result{Overlap: 1, Tau: 1, TauOK: true, MeanAbsDelta: 2, DeltaOK: true}, true)
	p.Add(run(100, false), run(300, true), Result{}, false)
	s := p.Stats()
	if s.Sampled != 3 || s.Dropped != 1 || s.Compared != 1 || s.OverlapAtK != 1 || s.KendallTau != 1 || s.MeanAbsScoreDelta != 2 {
		t.Fatalf("stats %+v", s)
	}
	if s.Champion.Runs != 2 || s.Challenger.Runs != 2 || s.Challenger.FaultRate != 0.5 || s.Champion.FaultRate != 0 {
		t.Fatalf("sides %+v %+v", s.Champion, s.Challenger)
	}
	if s.Challenger.P99US < 300 || s.Champion.MeanUS != 100 {
		t.Fatalf("latencies %+v %+v", s.Champion, s.Challenger)
	}
}

func TestWindowSlides(t *testing.T) {
	w := NewWindow(12 * time.Second)
	t0 := time.Unix(1000, 0)
	for i := range 12 {
		w.Record(t0.Add(time.Duration(i)*time.Second), Run{Took: time.Millisecond, Fault: i%2 == 0})
	}
	if got := w.Last(t0.Add(11 * time.Second)); got.Runs != 12 || got.Faults != 6 {
		t.Fatalf("full window %+v", got)
	}
	if got := w.Last(t0.Add(17 * time.Second)); got.Runs != 6 {
		t.Fatalf("half slid %+v", got.Runs)
	}
	if got := w.Last(t0.Add(time.Minute)); got.Runs != 0 {
		t.Fatalf("slid out %+v", got.Runs)
	}
	w.Record(t0.Add(time.Minute), Run{})
	if got := w.Last(t0.Add(time.Minute)); got.Runs != 1 || w.All().Runs != 13 {
		t.Fatalf("reused bucket %+v all %d", got.Runs, w.All().Runs)
	}
}

func BenchmarkCompareK20N500(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	ids := make([]uint32, 500)
	for i := range ids {
		ids[i] = uint32(i)
	}
	champ := Ranking{IDs: slices.Clone(ids), Scores: make([]float32, 500)}
	chal := Ranking{IDs: slices.Clone(ids), Scores: make([]float32, 500)}
	rng.Shuffle(len(chal.IDs), func(i, j int) { chal.IDs[i], chal.IDs[j] = chal.IDs[j], chal.IDs[i] })
	var s Scratch
	b.ReportAllocs()
	for b.Loop() {
		Compare(champ, chal, 20, &s)
	}
}
