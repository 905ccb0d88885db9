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
	over    []int32 // the slots with more members than the cap
	slotCnt []int32 // members per slot; all 0 between calls
	head    []int32 // first member of each slot's list
	next    []int32 // next member of the candidate's slot, -1 at the end
	heap    []int32 // a min-heap of candidate indexes (worst on top)
	inCap   []bool  // for members of over-cap slots: within the cap
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
	c.grow(len(r.next))
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
	if n <= len(r.next) {
		return
	}
	size := 1
	for size < 2*n {
		size <<= 1
	}
	r.slots = make([]int32, size)
	r.used = make([]int32, n)
	r.over = make([]int32, n)
	if len(r.slotCnt) < size {
		r.slotCnt = make([]int32, size)
		r.head = make([]int32, size)
	}
	r.next = make([]int32, n)
	r.heap = make([]int32, n+1)
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
// pushes down or drops the rest. One pass over the candidates counts each value's members
// and links them in a list; only values with more than capMax members are then visited,
// each through a min-heap of capMax entries: O(n + m log capMax) for the m candidates of
// such values. (The Go Wasm backend pays for every pass and branch, so fewer full passes
// matter more there than natively.)
func (r *Rules) applyCap(codes []int32, out Output) {
	c := r.c
	n := len(codes)
	r.grow(n)
	slots := r.slots
	used, nused := r.used[:n], 0 // indexed writes: append costs ~40 ns in the Go Wasm backend
	scores := out.Scores
	// Pass 1: the slot of each capped candidate, its value's member count and list, and the
	// lowest kept score. The host interns attribute values densely, so codes are usually
	// small: then a code is its own slot; otherwise slots come from an open-addressing
	// table.
	maxCode := int32(-1)
	for _, code := range codes {
		maxCode = max(maxCode, code)
	}
	direct := maxCode < directCodes
	if direct && int(maxCode) >= len(r.slotCnt) {
		r.slotCnt = make([]int32, maxCode+1) // zero, as the counters are between calls
		r.head = make([]int32, maxCode+1)
	}
	cnt, head, next := r.slotCnt, r.head, r.next
	lo := lowest(scores, out.Keep)
	if direct {
		nused = countDirect(codes, out.Keep, out.Pin, cnt, head, next, used)
	} else {
		nused = countHashed(codes, out.Keep, out.Pin, slots, cnt, head, next, used)
	}
	// Values with more than capMax members: keep the best capMax of each (inCap is only
	// meaningful for their members).
	capMax := int32(c.capMax)
	over, nover := r.over[:n], 0
	for _, h := range used[:nused] {
		if cnt[h] > capMax {
			over[nover] = h
			nover++
			best(head[h], next, r.heap[:capMax], scores, r.inCap)
		}
		cnt[h] = 0 // the counters are zero between calls
		if !direct {
			slots[h] = 0 // and so is the table
		}
	}
	if nover == 0 {
		return
	}
	// Push (the default) or drop the members that are not within their value's cap. A push
	// moves them below every kept candidate, keeping their order: subtract the distance from
	// the highest of them to the lowest kept score, plus 1.
	hi := float32(math.Inf(-1))
	for _, h := range over[:nover] {
		hi = highestOut(head[h], next, scores, r.inCap, hi)
	}
	shift := float64(hi) - lo + 1
	for _, h := range over[:nover] {
		for i := head[h]; i >= 0; i = next[i] {
			if r.inCap[i] {
				continue
			}
			if c.capDrop {
				out.Keep[i] = 0
			} else {
				scores[i] = clamp(float32(float64(scores[i]) - shift))
			}
		}
	}
}

// best walks one value's member list from first and marks in inCap the len(heap) best by
// score (ties to the lower index), with a min-heap of them (worst on top).
func best(first int32, next, heap []int32, scores []float32, inCap []bool) {
	capMax := int32(len(heap))
	fill := int32(0)
	for i := first; i >= 0; i = next[i] {
		if fill < capMax {
			j := fill // sift up
			for j > 0 {
				p := (j - 1) / 2
				if !better(scores, heap[p], i) {
					break
				}
				heap[j] = heap[p]
				j = p
			}
			heap[j] = i
			inCap[i] = true
			fill++
			continue
		}
		if !better(scores, i, heap[0]) {
			inCap[i] = false
			continue
		}
		inCap[heap[0]] = false
		inCap[i] = true
		j := int32(0) // replace the root and sift down
		for {
			l := 2*j + 1
			if l >= capMax {
				break
			}
			w := l
			if rr := l + 1; rr < capMax && better(scores, heap[l], heap[rr]) {
				w = rr
			}
			if !better(scores, i, heap[w]) {
				break
			}
			heap[j] = heap[w]
			j = w
		}
		heap[j] = i
	}
}

// highestOut returns the highest score, at least hi, of the members of the list from first
// that are not within the cap.
func highestOut(first int32, next []int32, scores []float32, inCap []bool, hi float32) float32 {
	for i := first; i >= 0; i = next[i] {
		if !inCap[i] && scores[i] > hi {
			hi = scores[i]
		}
	}
	return hi
}

// lowest returns the lowest score of the kept candidates.
func lowest(scores []float32, keep []uint8) float64 {
	lo := float32(math.Inf(1))
	for i, s := range scores {
		if keep[i] != 0 && s < lo {
			lo = s
		}
	}
	return float64(lo)
}

// countDirect counts the kept, unpinned candidates with a value per value, using codes as
// slots, links each value's members (head, next) and lists the slots used; it returns how
// many. Its own function, so that the Go Wasm backend keeps its few variables in locals.
func countDirect(codes []int32, keep []uint8, pin []int32, cnt, head, next, used []int32) int {
	nused := 0
	for i, code := range codes {
		if code < 0 || keep[i] == 0 || pin[i] >= 0 {
			continue
		}
		if cnt[code] == 0 {
			used[nused] = code
			nused++
			head[code] = -1
		}
		cnt[code]++
		next[i], head[code] = head[code], int32(i)
	}
	return nused
}

// countHashed is countDirect with slots from an open-addressing table of attribute code + 1.
func countHashed(codes []int32, keep []uint8, pin []int32, slots, cnt, head, next, used []int32) int {
	nused := 0
	mask := uint32(len(slots) - 1)
	for i, code := range codes {
		if code < 0 || keep[i] == 0 || pin[i] >= 0 {
			continue
		}
		u := (uint32(code) * 0x9E3779B1) & mask
		for slots[u] != code+1 && slots[u] != 0 {
			u = (u + 1) & mask
		}
		slots[u] = code + 1
		h := int32(u)
		if cnt[h] == 0 {
			used[nused] = h
			nused++
			head[h] = -1
		}
		cnt[h]++
		next[i], head[h] = head[h], int32(i)
	}
	return nused
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
