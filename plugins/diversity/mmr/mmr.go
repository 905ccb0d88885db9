// Package mmr reorders the top of a ranked list for diversity, by maximal marginal
// relevance over item embeddings or by round-robin over an attribute: the Podium reference
// plugin diversity/mmr, as a pure-Go package shared by the Wasm guest and the native pipeline.
//
// The similarity loop is behind Kernels: natively this package's Go loop, in the Wasm guest
// the host's podium.dot, which sums in the same order. See README.md for params.
package mmr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
)

// ErrParams reports stage params that cannot configure a Diversifier.
var ErrParams = errors.New("mmr: invalid params")

// ErrInput reports inputs whose sizes do not agree.
var ErrInput = errors.New("mmr: invalid input")

// DefaultLambda weighs relevance against novelty when params give no lambda.
const DefaultLambda = 0.7

// Params configure the plugin: the JSON object the host passes at init, the manifest's
// defaults overlaid by the stage's params, with "features" and "attributes" set by the host.
type Params struct {
	// Mode is "mmr" (the default) or "round_robin".
	Mode string `json:"mode,omitempty"`
	// Lambda, in [0, 1], weighs relevance against similarity to what is already chosen:
	// 1 is the incoming order, 0 pure novelty. Default DefaultLambda.
	Lambda *float32 `json:"lambda,omitempty"`
	// Pool is how many of the best candidates (by incoming score) MMR considers; 0 means
	// max(5·k, 100). It is raised to k when smaller. Cost is O(k·pool·dim).
	Pool int `json:"pool,omitempty"`
	// Attribute names the attribute that MaxPerValue caps (mmr) or that round-robin
	// alternates over; it must be one of Attributes. Required for round_robin.
	Attribute string `json:"attribute,omitempty"`
	// MaxPerValue caps how many chosen items share a value of Attribute; 0 for no cap.
	// In mmr mode, a candidate whose value is full is skipped while any other remains;
	// in round_robin mode, values take turns for MaxPerValue rounds, after which the rest
	// follow in score order.
	MaxPerValue int `json:"max_per_value,omitempty"`
	// Features is set by the host; the plugin reads none.
	Features []string `json:"features,omitempty"`
	// Attributes names the attribute columns, in the order the host lays them out.
	Attributes []string `json:"attributes,omitempty"`
}

// Kernels are the batched vector products the Diversifier calls. Dot sets out[i] to the dot
// product of q with row i of rows (len(out) rows of len(q) values).
type Kernels struct {
	Dot func(q, rows, out []float32)
}

// NativeKernels are this package's Go loops.
var NativeKernels = Kernels{Dot: Dot}

// Diversifier chooses the top-k order of one request at a time. It holds scratch buffers,
// so it is not goroutine-safe: use one per goroutine (Clone is cheap).
type Diversifier struct {
	dot         func(q, rows, out []float32)
	roundRobin  bool
	lambda      float32
	pool        int
	attrCol     int // -1: none
	maxPerValue int
	nattr       int

	np, dim int // this call's pool size and embedding dimension

	// scratch, grown to the largest request seen
	cand   []int32   // pool: candidate indexes
	emb    []float32 // pool embeddings, row-major
	inv    []float32 // inverse norm of each pool embedding, 0 for a zero vector
	keys   []uint32  // sort keys of the scores
	rel    []float32 // relevance in [0, 1]
	maxSim []float32
	sims   []float32
	pen    []float32 // 0, or −Inf once picked
	full   []bool    // the entry's value has reached max_per_value
	group  []int32   // dense value id of each pool entry, -1 none
	count  []int32   // picks (mmr) or members so far (round_robin) per group
	slots  []int32   // open addressing: code+1, 0 empty
	slotID []int32
	key    []int32
	tmp    []int32
}

// DecodeParams decodes params JSON strictly (unknown keys are an error, so that a typo is
// not silently ignored) and checks it.
func DecodeParams(data []byte) (Params, error) {
	var p Params
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, fmt.Errorf("%w: %v", ErrParams, err)
	}
	if dec.More() {
		return p, fmt.Errorf("%w: trailing data after the params object", ErrParams)
	}
	return p, nil
}

// New builds a Diversifier from params JSON (see Params) that computes similarities with k.
func New(params []byte, k Kernels) (*Diversifier, error) {
	p, err := DecodeParams(params)
	if err != nil {
		return nil, err
	}
	return NewFromParams(p, k)
}

// NewFromParams builds a Diversifier from decoded params.
func NewFromParams(p Params, k Kernels) (*Diversifier, error) {
	d := &Diversifier{dot: k.Dot, lambda: DefaultLambda, pool: p.Pool, attrCol: -1,
		maxPerValue: p.MaxPerValue, nattr: len(p.Attributes)}
	switch p.Mode {
	case "", "mmr":
		if d.dot == nil {
			return nil, fmt.Errorf("%w: no dot kernel", ErrParams)
		}
	case "round_robin":
		d.roundRobin = true
		if p.Attribute == "" {
			return nil, fmt.Errorf("%w: round_robin needs an attribute to alternate over", ErrParams)
		}
	default:
		return nil, fmt.Errorf("%w: mode %q, want \"mmr\" or \"round_robin\"", ErrParams, p.Mode)
	}
	if p.Lambda != nil {
		if !(*p.Lambda >= 0 && *p.Lambda <= 1) {
			return nil, fmt.Errorf("%w: lambda %v, want a number in [0, 1]", ErrParams, *p.Lambda)
		}
		d.lambda = *p.Lambda
	}
	if p.Pool < 0 {
		return nil, fmt.Errorf("%w: pool %d, want 0 (automatic) or more", ErrParams, p.Pool)
	}
	if p.MaxPerValue < 0 {
		return nil, fmt.Errorf("%w: max_per_value %d, want 0 (no cap) or more", ErrParams, p.MaxPerValue)
	}
	if p.MaxPerValue > 0 && p.Attribute == "" {
		return nil, fmt.Errorf("%w: max_per_value needs an attribute", ErrParams)
	}
	if p.Attribute != "" {
		d.attrCol = slices.Index(p.Attributes, p.Attribute)
		if d.attrCol < 0 {
			return nil, fmt.Errorf("%w: attribute %q is not in the stage's attributes %q", ErrParams, p.Attribute, p.Attributes)
		}
	}
	return d, nil
}

// Clone returns a Diversifier with the same configuration and scratch of its own.
func (d *Diversifier) Clone() *Diversifier {
	return &Diversifier{dot: d.dot, roundRobin: d.roundRobin, lambda: d.lambda, pool: d.pool,
		attrCol: d.attrCol, maxPerValue: d.maxPerValue, nattr: d.nattr}
}

// Input is one request's inputs, in the ABI's layout; n is len(Scores).
type Input struct {
	// Embeddings holds the candidates' embeddings, row-major, Dim values each; empty when
	// the host passes none (then every similarity is 0).
	Embeddings []float32
	Dim        int
	// Attributes is the column-major attribute matrix of codes, -1 when missing.
	Attributes []int32
	// Scores are the incoming scores: the relevance.
	Scores []float32
}

// Order writes the chosen top-k order into order[:m], as candidate indexes, and returns m =
// min(k, n); order must have room for m entries. The engine places the unlisted candidates
// after them, in their input order (ABI §4, diversity). Ties go to the lower candidate
// index. Order does not allocate once its scratch has grown to the request's size.
func (d *Diversifier) Order(in Input, k int, order []int32) (int, error) {
	n := len(in.Scores)
	switch {
	case in.Dim < 0 || len(in.Embeddings) != n*in.Dim:
		return 0, fmt.Errorf("%w: %d embedding values for %d candidates of dimension %d", ErrInput, len(in.Embeddings), n, in.Dim)
	case len(in.Attributes) != d.nattr*n:
		return 0, fmt.Errorf("%w: %d attribute codes for %d candidates × %d columns", ErrInput, len(in.Attributes), n, d.nattr)
	}
	m := min(max(k, 0), n)
	if len(order) < m {
		return 0, fmt.Errorf("%w: room for %d of %d entries in order", ErrInput, len(order), m)
	}
	if m == 0 {
		return 0, nil
	}
	var codes []int32
	if d.attrCol >= 0 {
		codes = in.Attributes[d.attrCol*n : (d.attrCol+1)*n]
	}
	if d.roundRobin {
		d.grow(n, 0)
		d.roundRobinOrder(in.Scores, codes, order[:m])
		return m, nil
	}
	p := d.pool
	if p == 0 {
		p = max(5*m, 100)
	}
	p = min(max(p, m), n)
	d.grow(p, in.Dim)
	d.np, d.dim = p, in.Dim
	d.topP(in.Scores, p)
	d.prepare(in, codes, p)
	d.mmr(order[:m])
	return m, nil
}

// grow sizes the scratch for a pool of p candidates of dimension dim.
func (d *Diversifier) grow(p, dim int) {
	if p > len(d.cand) {
		d.cand = make([]int32, p)
		d.inv = make([]float32, p)
		d.rel = make([]float32, p)
		d.maxSim = make([]float32, p)
		d.sims = make([]float32, p)
		d.pen = make([]float32, p)
		d.full = make([]bool, p)
		d.group = make([]int32, p)
		d.count = make([]int32, p+1)
		d.key = make([]int32, p)
		d.tmp = make([]int32, p)
		size := 1
		for size < 2*p {
			size <<= 1
		}
		d.slots = make([]int32, size)
		d.slotID = make([]int32, size)
	}
	if p*dim > len(d.emb) {
		d.emb = make([]float32, p*dim)
	}
}

// better reports whether candidate a ranks above b by score, ties to the lower index. A NaN
// score ranks below every number.
func better(scores []float32, a, b int32) bool {
	sa, sb := scores[a], scores[b]
	switch {
	case sa == sb || sa != sa && sb != sb:
		return a < b
	case sa != sa:
		return false
	case sb != sb:
		return true
	}
	return sa > sb
}

// sortKey maps a score to a uint32 whose order is the scores' order (equal scores, -0 and
// +0 included, get equal keys); NaN maps to 0, below every number.
func sortKey(v float32) uint32 {
	if v == 0 {
		v = 0 // -0 ranks as +0, as comparisons do
	}
	u := math.Float32bits(v)
	k := u ^ (uint32(int32(u)>>31) | 1<<31) // negative: all bits flipped; else the sign bit
	if v != v {
		k = 0
	}
	return k
}

// topP fills d.cand[:p] with the p best candidates by score (ties to the lower index), in
// index order. It finds the p-th largest score with a radix select over the scores' sort keys,
// 8 bits a pass, then collects: O(n) with no comparisons through an index, which matters in
// the Go Wasm backend.
func (d *Diversifier) topP(scores []float32, p int) {
	n := len(scores)
	cand := d.cand[:p]
	if p == n {
		for i := range cand {
			cand[i] = int32(i)
		}
		return
	}
	if len(d.keys) < n {
		d.keys = make([]uint32, n)
	}
	keys := d.keys[:n]
	for i, v := range scores {
		keys[i] = sortKey(v)
	}
	// The p-th largest key: its bits are fixed 8 at a time, from the top, among the keys
	// that share the bits fixed so far; need counts how many more of those are wanted.
	var prefix, mask uint32
	need := int32(p)
	var hist [256]int32
	for shift := 24; shift >= 0; shift -= 8 {
		hist = [256]int32{}
		for _, k := range keys {
			var in int32 // no branch: see mmr
			if k&mask == prefix {
				in = 1
			}
			hist[k>>uint(shift)&255] += in
		}
		b := 255
		for ; b > 0 && hist[b] < need; b-- {
			need -= hist[b]
		}
		prefix |= uint32(b) << uint(shift)
		mask |= 255 << uint(shift)
		if hist[b] == need {
			need = int32(len(keys)) // every key with this prefix is in: no more passes
			break
		}
	}
	// Every key whose fixed bits are above the prefix, and the first need keys equal to it.
	j := 0
	for i, k := range keys {
		if k&mask > prefix || k&mask == prefix && need > 0 {
			if k&mask == prefix {
				need--
			}
			cand[j] = int32(i)
			j++
		}
	}
}

// groups gives each of the first len(ids) entries a dense id for its attribute value in
// d.group (-1 for a missing value when missingGroup is false) and returns the number of ids.
func (d *Diversifier) groups(codes []int32, ids []int32, missingGroup bool) int {
	clear(d.slots)
	mask := uint32(len(d.slots) - 1)
	next, missing := int32(0), int32(-1)
	for p, c := range ids {
		code := codes[c]
		if code < 0 {
			if missingGroup && missing < 0 {
				missing, next = next, next+1
			}
			d.group[p] = missing
			continue
		}
		h := (uint32(code) * 0x9E3779B1) & mask
		for d.slots[h] != 0 && d.slots[h] != code+1 {
			h = (h + 1) & mask
		}
		if d.slots[h] == 0 {
			d.slots[h] = code + 1
			d.slotID[h] = next
			next++
		}
		d.group[p] = d.slotID[h]
	}
	return int(next)
}

// prepare computes the pool's relevance, gathers its embeddings into one row-major matrix
// (for the dot kernel) with the inverse of each row's norm, and assigns groups.
func (d *Diversifier) prepare(in Input, codes []int32, p int) {
	cand := d.cand[:p]
	lo, hi := float32(math.Inf(1)), float32(math.Inf(-1))
	for _, c := range cand {
		if s := in.Scores[c]; finite(s) {
			// Comparisons: float min and max are runtime calls in the Go Wasm backend.
			if s < lo {
				lo = s
			}
			if s > hi {
				hi = s
			}
		}
	}
	for i, c := range cand {
		s := in.Scores[c]
		switch {
		case !finite(s):
			d.rel[i] = 0
		case hi > lo:
			d.rel[i] = float32((float64(s) - float64(lo)) / (float64(hi) - float64(lo)))
		default:
			d.rel[i] = 1
		}
	}
	dim := in.Dim
	for i, c := range cand {
		row := d.emb[i*dim : (i+1)*dim]
		copy(row, in.Embeddings[int(c)*dim:(int(c)+1)*dim])
		ss := dot(row, row)
		if ss > 0 && ss <= math.MaxFloat32 {
			d.inv[i] = float32(1 / math.Sqrt(float64(ss)))
		} else {
			d.inv[i] = 0 // a zero or non-finite vector is similar to nothing
		}
	}
	ng := 0
	if codes != nil && d.maxPerValue > 0 {
		ng = d.groups(codes, cand, false)
	} else {
		for i := range cand {
			d.group[i] = -1
		}
	}
	clear(d.count[:ng])
}

// mmr picks len(order) entries of the pool greedily by λ·rel − (1−λ)·max similarity to the
// entries already picked. After each pick one dot-kernel call gives every entry's similarity
// to it (dot · both inverse norms: the cosine), and a single loop folds it into the entry's
// max similarity and finds the next pick: O(k·pool·dim), with one Go loop per pick.
//
// The loop is written without branches where it can be (picked entries score −Inf through
// pen, capped values are a flag): in the Go Wasm backend every taken branch goes through the
// function's block dispatcher, and this made the Wasm guest several times slower. The pool
// is in candidate order, so a strict > keeps ties on the lower candidate index.
func (d *Diversifier) mmr(order []int32) {
	np, dim := d.np, d.dim
	cand, rel, maxSim, pen, full, group, inv, sims := d.cand[:np], d.rel[:np], d.maxSim[:np], d.pen[:np],
		d.full[:np], d.group[:np], d.inv[:np], d.sims[:np]
	emb := d.emb[:np*dim]
	clear(pen)
	clear(full)
	lambda, mu := d.lambda, 1-d.lambda
	capped := int32(d.maxPerValue)
	negInf := float32(math.Inf(-1))
	// The first pick: the best λ·rel (nothing is picked or capped yet).
	best, bestV := 0, negInf
	for i, r := range rel {
		v := lambda * r
		if v > bestV {
			best, bestV = i, v
		}
	}
	for t := range order {
		pen[best] = negInf
		order[t] = cand[best]
		if g := group[best]; g >= 0 {
			d.count[g]++
			if d.count[g] == capped {
				for i, gi := range group {
					if gi == g {
						full[i] = true
					}
				}
			}
		}
		if t == len(order)-1 {
			break
		}
		if dim > 0 {
			d.dot(emb[best*dim:(best+1)*dim], emb, sims)
		} else {
			clear(sims)
		}
		invb, first := inv[best], t == 0
		// The best entry whose value is not full, and the best overall (taken only when
		// every remaining entry's value is full).
		next, any := -1, -1
		nextV, anyV := negInf, negInf
		for i := range cand {
			s := sims[i] * invb * inv[i]
			if s-s != 0 { // ±Inf or NaN
				s = 0
			}
			m := maxSim[i]
			if s > m || first {
				m = s
			}
			maxSim[i] = m
			v := lambda*rel[i] - mu*m + pen[i]
			if v > anyV {
				any, anyV = i, v
			}
			if v > nextV && !full[i] {
				next, nextV = i, v
			}
		}
		if next < 0 {
			next = any
		}
		best = next
	}
}

// roundRobinOrder orders the candidates by score, then lets the attribute's values take
// turns: the best of each value (in score order), then the second best of each, and so on;
// after maxPerValue rounds (if set) the rest follow in score order. A missing value counts
// as a value of its own.
func (d *Diversifier) roundRobinOrder(scores []float32, codes []int32, order []int32) {
	n := len(scores)
	cand := d.cand[:n]
	for i := range cand {
		cand[i] = int32(i)
	}
	slices.SortFunc(cand, func(a, b int32) int {
		if better(scores, a, b) {
			return -1
		}
		if better(scores, b, a) {
			return 1
		}
		return 0
	})
	ng := d.groups(codes, cand, true)
	rounds := int32(n)
	if d.maxPerValue > 0 {
		rounds = int32(d.maxPerValue)
	}
	clear(d.count[:ng])
	key := d.key[:n]
	for p := range cand {
		g := d.group[p]
		key[p] = min(d.count[g], rounds)
		d.count[g]++
	}
	// Stable counting sort of the score order by round.
	hist := d.count[:min(int(rounds), n-1)+1] // keys are at most rounds and below n
	clear(hist)
	for _, k := range key {
		hist[k]++
	}
	at := int32(0)
	for r, c := range hist {
		hist[r] = at
		at += c
	}
	tmp := d.tmp[:n]
	for p, c := range cand {
		tmp[hist[key[p]]] = c
		hist[key[p]]++
	}
	copy(order, tmp)
}

func finite(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }

// Dot sets out[i] to the dot product of q with row i of rows, a row-major matrix of len(out)
// rows of len(q) values. It sums in the same order as the engine's podium.dot kernel (four
// interleaved partial sums), so the native and Wasm pipelines choose the same order. It
// panics if rows is shorter than len(out)·len(q).
func Dot(q, rows, out []float32) {
	dim := len(q)
	_ = rows[:len(out)*dim]
	for i := range out {
		out[i] = dot(q, rows[i*dim:(i+1)*dim])
	}
}

func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	j := 0
	for ; j+4 <= len(a); j += 4 {
		s0 += a[j] * b[j]
		s1 += a[j+1] * b[j+1]
		s2 += a[j+2] * b[j+2]
		s3 += a[j+3] * b[j+3]
	}
	for ; j < len(a); j++ {
		s0 += a[j] * b[j]
	}
	return (s0 + s1) + (s2 + s3)
}
