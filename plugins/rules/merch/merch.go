package merch

import (
	"fmt"
	"math"
)

// config is compiled params: immutable, shared by a Rules and its clones.
type config struct {
	nfeat, nattr int
	drop         []cond
	adjust       []adjust // boosts, then buries, in params order
	pins         []pin    // sorted by id
	capCol       int      // -1: no cap
	capMax       int
	capDrop      bool
	warnings     []string
}

// Rules applies compiled merchandising rules to one request at a time. It holds scratch
// buffers, so it is not goroutine-safe: use one per goroutine (Clone is cheap).
type Rules struct {
	c *config
	// cap scratch, grown to the largest request seen
	slots   []int32 // open-addressing table: attribute code + 1, 0 empty; all 0 between calls
	used    []int32 // the slots taken in this call
	slotCnt []int32 // members per slot, then heap fill
	slotOff []int32 // segment offset of the slot's heap in heap
	slotOf  []int32 // slot of each candidate, -1 if exempt
	heap    []int32 // per-slot min-heaps of candidate indexes (worst on top)
	inCap   []bool
}

// New compiles params JSON (see Params), resolving attribute values and item ids through
// lookup. Unknown values and ids are not errors (see Warnings).
func New(params []byte, lookup Lookup) (*Rules, error) {
	p, err := DecodeParams(params)
	if err != nil {
		return nil, err
	}
	return NewFromParams(p, lookup)
}

// NewFromParams compiles decoded params (see New).
func NewFromParams(p Params, lookup Lookup) (*Rules, error) {
	c, err := compile(p, lookup)
	if err != nil {
		return nil, err
	}
	r := &Rules{c: c}
	r.grow(1024)
	return r, nil
}

// Clone returns Rules sharing r's compiled rules with scratch of its own.
func (r *Rules) Clone() *Rules {
	c := &Rules{c: r.c}
	c.grow(len(r.slotOf))
	return c
}

// Warnings returns what compiling the params noticed but did not refuse: attribute values
// and pinned ids the engine does not know. The Wasm guest logs them at init.
func (r *Rules) Warnings() []string { return r.c.warnings }

// Input is one request's inputs, in the ABI's layout; n is len(Scores).
type Input struct {
	// IDs are the candidates' dense ids (for pins).
	IDs []uint32
	// Features is the column-major feature matrix: feature j of candidate i at [j·n+i],
	// NaN when missing.
	Features []float32
	// Attributes is the column-major attribute matrix of codes, -1 when missing.
	Attributes []int32
	// Scores are the incoming scores.
	Scores []float32
}

// Output receives the rules' decisions, one entry per candidate, as ABI §4 defines them for
// a rules stage: the engine drops candidates with Keep 0, orders the rest by Scores
// (descending) and moves each candidate with Pin ≥ 0 to that position.
type Output struct {
	Keep   []uint8
	Scores []float32
	Pin    []int32
	// Prefilled says that Keep, Scores and Pin already hold 1, the incoming scores and -1,
	// as the engine prefills a rules block (ABI §3), so Apply need not write them first.
	// It saves the Wasm guest three passes.
	Prefilled bool
}

// Apply runs the rules for one request and writes every entry of out (unless it is
// Prefilled, then only the entries that change): first drop_if, then
// boosts and buries (in params order), then pins (a pin beyond the list goes to its end;
// dropped candidates are not pinned), then the cap over the kept, unpinned candidates in
// score order (ties go to the lower candidate index). Apply does not allocate once its
// scratch has grown to the request's size.
func (r *Rules) Apply(in Input, out Output) error {
	c := r.c
	n := len(in.Scores)
	switch {
	case len(in.IDs) != n:
		return fmt.Errorf("%w: %d ids for %d candidates", ErrInput, len(in.IDs), n)
	case len(in.Features) != c.nfeat*n:
		return fmt.Errorf("%w: %d feature values for %d candidates × %d columns", ErrInput, len(in.Features), n, c.nfeat)
	case len(in.Attributes) != c.nattr*n:
		return fmt.Errorf("%w: %d attribute codes for %d candidates × %d columns", ErrInput, len(in.Attributes), n, c.nattr)
	case len(out.Keep) != n || len(out.Scores) != n || len(out.Pin) != n:
		return fmt.Errorf("%w: outputs of %d, %d and %d entries for %d candidates", ErrInput,
			len(out.Keep), len(out.Scores), len(out.Pin), n)
	}
	if !out.Prefilled {
		for i := range out.Keep {
			out.Keep[i] = 1
		}
		copy(out.Scores, in.Scores)
		for i := range out.Pin {
			out.Pin[i] = -1
		}
	}
	// One loop per rule over its column, with the test inlined: the Go Wasm backend makes
	// calls and loop back-edges expensive, so the fewer per candidate the better.
	for k := range c.drop {
		d := &c.drop[k]
		if d.attr {
			col := in.Attributes[d.col*n : (d.col+1)*n]
			if bits := d.bits; bits != nil {
				for i, code := range col {
					if inBits(bits, code) {
						out.Keep[i] = 0
					}
				}
			} else {
				for i, code := range col {
					if d.matchSorted(code) {
						out.Keep[i] = 0
					}
				}
			}
			continue
		}
		for i, x := range in.Features[d.col*n : (d.col+1)*n] {
			if d.matchX(x) {
				out.Keep[i] = 0
			}
		}
	}
	for k := range c.adjust {
		a := &c.adjust[k]
		if a.attr {
			col := in.Attributes[a.col*n : (a.col+1)*n]
			if bits := a.bits; bits != nil {
				for i, code := range col {
					if inBits(bits, code) {
						out.Scores[i] = clamp(out.Scores[i]*a.mul + a.add)
					}
				}
			} else {
				for i, code := range col {
					if a.matchSorted(code) {
						out.Scores[i] = clamp(out.Scores[i]*a.mul + a.add)
					}
				}
			}
			continue
		}
		for i, x := range in.Features[a.col*n : (a.col+1)*n] {
			if a.matchX(x) {
				out.Scores[i] = clamp(out.Scores[i]*a.mul + a.add)
			}
		}
	}
	if len(c.pins) > 0 {
		r.applyPins(in.IDs, out)
	}
	if c.capCol >= 0 && n > c.capMax {
		r.applyCap(in.Attributes[c.capCol*n:(c.capCol+1)*n], out)
	}
	return nil
}

// applyPins sets the pin of each kept candidate whose id is pinned, by binary search in the
// sorted pins.
func (r *Rules) applyPins(ids []uint32, out Output) {
	pins := r.c.pins
	lo, hi := pins[0].id, pins[len(pins)-1].id
	last := int32(len(ids) - 1)
	for i, id := range ids {
		if id < lo || id > hi || out.Keep[i] == 0 {
			continue
		}
		a, b := 0, len(pins)
		for a < b {
			m := int(uint(a+b) >> 1)
			if pins[m].id < id {
				a = m + 1
			} else {
				b = m
			}
		}
		if a < len(pins) && pins[a].id == id {
			out.Pin[i] = min(pins[a].pos, last)
		}
	}
}

// directCodes bounds the attribute codes the cap uses as slots directly (256 KiB of
// counters at most); larger codes go through the hash table.
const directCodes = 1 << 15

// grow sizes the cap scratch for n candidates.
func (r *Rules) grow(n int) {
	if n <= len(r.slotOf) {
		return
	}
	size := 1
	for size < 2*n {
		size <<= 1
	}
	r.slots = make([]int32, size)
	r.used = make([]int32, 0, n)
	r.slotCnt = make([]int32, size)
	r.slotOff = make([]int32, size)
	r.slotOf = make([]int32, n)
	r.heap = make([]int32, n)
	r.inCap = make([]bool, n)
}

// better reports whether candidate a ranks above b: higher score, then lower index.
func better(scores []float32, a, b int32) bool {
	if scores[a] != scores[b] {
		return scores[a] > scores[b]
	}
	return a < b
}

// applyCap keeps, per attribute value, the capMax best kept and unpinned candidates, and
// pushes down or drops the rest. Each value's best are found with a min-heap of capMax
// entries, so the cost is O(n log capMax) and independent of the order of the input.
func (r *Rules) applyCap(codes []int32, out Output) {
	c := r.c
	n := len(codes)
	r.grow(n)
	slots := r.slots
	used := r.used[:0]
	// Pass 1: the slot of each capped candidate, and the size of each value's group. The
	// host interns attribute values densely, so codes are usually small: then a code is its
	// own slot; otherwise slots come from an open-addressing table.
	maxCode := int32(-1)
	for _, code := range codes {
		maxCode = max(maxCode, code)
	}
	if maxCode < directCodes {
		if int(maxCode) >= len(r.slotCnt) {
			r.slotCnt = make([]int32, maxCode+1) // zero, as the table is between calls
			r.slotOff = make([]int32, maxCode+1)
		}
		cnt := r.slotCnt
		for i, code := range codes {
			slot := int32(-1)
			if code >= 0 && out.Keep[i] != 0 && out.Pin[i] < 0 {
				if cnt[code] == 0 {
					used = append(used, code)
				}
				cnt[code]++
				slot = code
			}
			r.slotOf[i] = slot
		}
	} else {
		cnt := r.slotCnt
		mask := uint32(len(slots) - 1)
		for i, code := range codes {
			r.slotOf[i] = -1
			if code < 0 || out.Keep[i] == 0 || out.Pin[i] >= 0 {
				continue
			}
			h := (uint32(code) * 0x9E3779B1) & mask
			for slots[h] != code+1 {
				if slots[h] == 0 {
					slots[h], cnt[h] = code+1, 0
					used = append(used, int32(h))
					break
				}
				h = (h + 1) & mask
			}
			cnt[h]++
			r.slotOf[i] = int32(h)
		}
	}
	cnt := r.slotCnt
	// Only values with more than capMax candidates need a heap: capMax entries of r.heap
	// each. Usually there are few or none (with a cap of 3, most brands have fewer
	// candidates), and then nothing is capped.
	capMax := int32(c.capMax)
	off, over := int32(0), false
	for _, h := range used {
		r.slotOff[h] = -1
		if cnt[h] > capMax {
			r.slotOff[h], over = off, true
			off += capMax
		}
		cnt[h] = 0 // now the heap's fill, and zero again after the call
		if maxCode >= directCodes {
			slots[h] = 0 // the table is empty again for the next call
		}
	}
	if !over {
		return
	}
	// Pass 2: push every candidate of such a value into its heap; a full heap keeps the best.
	scores := out.Scores
	for i := range codes {
		r.inCap[i] = true
		h := r.slotOf[i]
		if h < 0 || r.slotOff[h] < 0 {
			continue
		}
		heap := r.heap[r.slotOff[h] : r.slotOff[h]+capMax]
		fill := cnt[h]
		idx := int32(i)
		if fill < capMax {
			// sift up
			j := fill
			for j > 0 {
				p := (j - 1) / 2
				if !better(scores, heap[p], idx) {
					break
				}
				heap[j] = heap[p]
				j = p
			}
			heap[j] = idx
			cnt[h] = fill + 1
			r.inCap[i] = true
			continue
		}
		if !better(scores, idx, heap[0]) {
			r.inCap[i] = false
			continue
		}
		r.inCap[heap[0]] = false
		r.inCap[i] = true
		// replace the root and sift down
		j := int32(0)
		for {
			l := 2*j + 1
			if l >= capMax {
				break
			}
			w := l
			if rr := l + 1; rr < capMax && better(scores, heap[l], heap[rr]) {
				w = rr
			}
			if !better(scores, idx, heap[w]) {
				break
			}
			heap[j] = heap[w]
			j = w
		}
		heap[j] = idx
	}
	for _, h := range used {
		cnt[h] = 0 // the counters are zero between calls
	}
	if c.capDrop {
		for i, in := range r.inCap[:n] {
			if !in {
				out.Keep[i] = 0
			}
		}
		return
	}
	// Push: shift the overflow below the lowest kept candidate within its cap.
	lo, hi := math.Inf(1), math.Inf(-1)
	over = false
	for i, in := range r.inCap[:n] {
		if out.Keep[i] == 0 {
			continue
		}
		s := float64(scores[i])
		switch {
		case in && s < lo:
			lo = s
		case !in && s > hi:
			hi, over = s, true
		case !in:
			over = true
		}
	}
	if !over || hi < lo {
		return
	}
	shift := hi - lo + 1
	for i, in := range r.inCap[:n] {
		if !in && out.Keep[i] != 0 {
			scores[i] = clamp(float32(float64(scores[i]) - shift))
		}
	}
}

// clamp keeps a score finite, as the engine requires.
func clamp(v float32) float32 {
	// Comparisons, not the min and max builtins: for floats those are runtime calls in the
	// Go Wasm backend, which made this loop ten times slower there.
	switch {
	case v != v:
		return 0
	case v > math.MaxFloat32:
		return math.MaxFloat32
	case v < -math.MaxFloat32:
		return -math.MaxFloat32
	}
	return v
}
