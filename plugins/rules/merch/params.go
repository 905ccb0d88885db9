// Package merch applies merchandising rules to a ranked list: drop items (out of stock, a
// blocked brand), boost or bury by attribute value, pin ids to positions and cap items per
// attribute value. It is the Podium reference plugin rules/merch, as a pure-Go package
// shared by the Wasm guest and the native pipeline. See README.md for params.
package merch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
)

// ErrParams reports stage params that cannot configure Rules.
var ErrParams = errors.New("merch: invalid params")

// ErrInput reports inputs whose sizes do not agree.
var ErrInput = errors.New("merch: invalid input")

// Lookup resolves a string to the integer code the host uses for it: space is an attribute
// name (e.g. "brand") or "id" for item ids (the dense id). It returns -1 for an unknown
// string. In the Wasm guest it is the host import podium.lookup; natively, the catalog's
// interner.
type Lookup func(space, value string) int32

// Params configure the plugin: the JSON object the host passes at init, the manifest's
// defaults overlaid by the stage's params, with "features" and "attributes" set by the host.
type Params struct {
	// DropIf drops a candidate that matches any of the conditions. A single object is
	// accepted for one condition.
	DropIf Conditions `json:"drop_if,omitempty"`
	// Boost adjusts the score of matching candidates: score·mul + add, with add ≥ 0 and
	// mul ≥ 1.
	Boost []Adjust `json:"boost,omitempty"`
	// Bury is Boost downwards: add ≤ 0 and 0 ≤ mul ≤ 1.
	Bury []Adjust `json:"bury,omitempty"`
	// Pin maps item ids to the 0-based position they must take, e.g. {"i42": 0}.
	Pin map[string]int `json:"pin,omitempty"`
	// Cap limits the candidates per attribute value.
	Cap *Cap `json:"cap,omitempty"`
	// Features names the feature columns, in the order the host lays them out.
	Features []string `json:"features"`
	// Attributes names the attribute columns, in the order the host lays them out.
	Attributes []string `json:"attributes"`
}

// Condition matches a candidate by one feature or one attribute.
//
// With Feature, every comparison given must hold (lt, le, gt, ge, eq, ne); a missing value
// (NaN) fails every comparison and matches only if Missing is true. With Attribute, the
// candidate's value must be Value or one of Values (Missing: it has none).
type Condition struct {
	Feature   string   `json:"feature,omitempty"`
	Attribute string   `json:"attribute,omitempty"`
	Value     string   `json:"value,omitempty"`
	Values    []string `json:"values,omitempty"`
	Missing   bool     `json:"missing,omitempty"`
	LT        *float32 `json:"lt,omitempty"`
	LE        *float32 `json:"le,omitempty"`
	GT        *float32 `json:"gt,omitempty"`
	GE        *float32 `json:"ge,omitempty"`
	EQ        *float32 `json:"eq,omitempty"`
	NE        *float32 `json:"ne,omitempty"`
}

// Conditions is a list of conditions that decodes from a JSON array or a single object.
type Conditions []Condition

// UnmarshalJSON implements json.Unmarshaler.
func (c *Conditions) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		var one Condition
		if err := strictUnmarshal(b, &one); err != nil {
			return err
		}
		*c = Conditions{one}
		return nil
	}
	var many []Condition
	if err := strictUnmarshal(b, &many); err != nil {
		return err
	}
	*c = many
	return nil
}

// Adjust is a boost or bury: a condition and the change to the score of the candidates
// that match it, score·Mul + Add (Mul defaults to 1). Mul assumes non-negative scores; use
// Add for scores that can be negative, such as raw margins.
type Adjust struct {
	Condition
	Add float32  `json:"add,omitempty"`
	Mul *float32 `json:"mul,omitempty"`
}

// Cap limits the candidates per value of an attribute, in score order (after boosts and
// buries): for each value only the best Max stay in place. Mode "push" (the default) moves
// the others below every kept candidate, keeping their relative order; "drop" drops them. Pinned candidates and those without a value are exempt and not counted.
type Cap struct {
	Attribute string `json:"attribute"`
	Max       int    `json:"max"`
	Mode      string `json:"mode,omitempty"`
}

func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the params object")
	}
	return nil
}

// DecodeParams decodes params JSON strictly: unknown keys are an error, so that a typo is
// not silently ignored.
func DecodeParams(data []byte) (Params, error) {
	var p Params
	if err := strictUnmarshal(data, &p); err != nil {
		return p, fmt.Errorf("%w: %v", ErrParams, err)
	}
	return p, nil
}

// cond is a compiled condition: a feature column and the interval [lo, hi] its value must
// lie in (every comparison but ne narrows it; strict ones by one ulp) minus the ne values,
// or an attribute column and a set of codes, as a bitmap when the codes are small (the host
// interns them densely) or else sorted.
type cond struct {
	col     int // feature or attribute column
	attr    bool
	missing bool // a missing value matches
	// feature conditions
	hasCmp bool
	lo, hi float32
	ne     []float32
	// attribute conditions
	bits  []uint64 // bit c+1 set: code c matches (bit 0: missing); nil when a code is too large
	codes []int32  // sorted, used when bits is nil
}

// maxBitmapCode bounds the codes kept in a condition's bitmap (128 KiB).
const maxBitmapCode = 1 << 20

// matchX reports whether feature value x matches a feature condition.
func (k *cond) matchX(x float32) bool {
	if x != x {
		return k.missing
	}
	if !k.hasCmp || x < k.lo || x > k.hi {
		return false
	}
	return len(k.ne) == 0 || !slices.Contains(k.ne, x)
}

// inBits reports whether attribute code c matches a condition's bitmap.
func inBits(bits []uint64, c int32) bool {
	u := uint32(c) + 1 // -1 (missing) is bit 0
	w := int(u >> 6)
	return w < len(bits) && bits[w]>>(u&63)&1 != 0
}

// matchSorted reports whether attribute code c matches a condition without a bitmap.
func (k *cond) matchSorted(c int32) bool {
	if c < 0 {
		return k.missing
	}
	_, ok := slices.BinarySearch(k.codes, c)
	return ok
}

type adjust struct {
	cond
	mul, add float32
}

type pin struct {
	id  uint32
	pos int32
}

// compile turns params into column indexes and codes, resolving strings through lookup.
// Strings the host does not know produce a warning, not an error: a rule about a brand that
// is not in the catalog yet matches nothing.
func compile(p Params, lookup Lookup) (*config, error) {
	c := &config{nfeat: len(p.Features), nattr: len(p.Attributes)}
	for i, d := range p.DropIf {
		k, err := c.cond(d, p, lookup)
		if err != nil {
			return nil, fmt.Errorf("%w: drop_if[%d]: %v", ErrParams, i, err)
		}
		c.drop = append(c.drop, k)
	}
	for _, list := range []struct {
		name string
		adj  []Adjust
		up   bool
	}{{"boost", p.Boost, true}, {"bury", p.Bury, false}} {
		for i, a := range list.adj {
			k, err := c.cond(a.Condition, p, lookup)
			if err != nil {
				return nil, fmt.Errorf("%w: %s[%d]: %v", ErrParams, list.name, i, err)
			}
			mul := float32(1)
			if a.Mul != nil {
				mul = *a.Mul
			}
			if !finite(mul) || !finite(a.Add) {
				return nil, fmt.Errorf("%w: %s[%d]: add and mul must be finite", ErrParams, list.name, i)
			}
			if list.up && (a.Add < 0 || mul < 1) {
				return nil, fmt.Errorf("%w: boost[%d]: a boost needs add ≥ 0 and mul ≥ 1 (got add %v, mul %v); use bury to lower scores",
					ErrParams, i, a.Add, mul)
			}
			if !list.up && (a.Add > 0 || mul < 0 || mul > 1) {
				return nil, fmt.Errorf("%w: bury[%d]: a bury needs add ≤ 0 and 0 ≤ mul ≤ 1 (got add %v, mul %v)",
					ErrParams, i, a.Add, mul)
			}
			c.adjust = append(c.adjust, adjust{cond: k, mul: mul, add: a.Add})
		}
	}
	ids := make([]string, 0, len(p.Pin))
	for id := range p.Pin {
		ids = append(ids, id)
	}
	sort.Strings(ids) // deterministic warnings
	for _, id := range ids {
		pos := p.Pin[id]
		if pos < 0 {
			return nil, fmt.Errorf("%w: pin %q to position %d: positions start at 0", ErrParams, id, pos)
		}
		dense := lookup("id", id)
		if dense < 0 {
			c.warn("pin: unknown item id %q, ignored", id)
			continue
		}
		c.pins = append(c.pins, pin{id: uint32(dense), pos: int32(min(pos, math.MaxInt32))})
	}
	slices.SortFunc(c.pins, func(a, b pin) int {
		if a.id != b.id {
			return int(int64(a.id) - int64(b.id))
		}
		return int(a.pos - b.pos)
	})
	// Two ids resolving to one dense id: keep the first position.
	c.pins = slices.CompactFunc(c.pins, func(a, b pin) bool { return a.id == b.id })
	if p.Cap != nil {
		col := slices.Index(p.Attributes, p.Cap.Attribute)
		if col < 0 {
			return nil, fmt.Errorf("%w: cap: attribute %q is not in the stage's attributes %q",
				ErrParams, p.Cap.Attribute, p.Attributes)
		}
		if p.Cap.Max < 1 {
			return nil, fmt.Errorf("%w: cap: max %d, want at least 1", ErrParams, p.Cap.Max)
		}
		switch p.Cap.Mode {
		case "", "push":
		case "drop":
			c.capDrop = true
		default:
			return nil, fmt.Errorf("%w: cap: mode %q, want \"push\" or \"drop\"", ErrParams, p.Cap.Mode)
		}
		c.capCol, c.capMax = col, p.Cap.Max
	} else {
		c.capCol = -1
	}
	return c, nil
}

func (c *config) cond(d Condition, p Params, lookup Lookup) (cond, error) {
	var k cond
	k.missing = d.Missing
	switch {
	case d.Feature != "" && d.Attribute != "":
		return k, errors.New("give feature or attribute, not both")
	case d.Feature != "":
		k.col = slices.Index(p.Features, d.Feature)
		if k.col < 0 {
			return k, fmt.Errorf("feature %q is not in the stage's features %q", d.Feature, p.Features)
		}
		if d.Value != "" || len(d.Values) > 0 {
			return k, errors.New("value and values go with attribute, not feature")
		}
		inf := float32(math.Inf(1))
		k.lo, k.hi = -inf, inf
		for _, v := range []*float32{d.LT, d.LE, d.GT, d.GE, d.EQ, d.NE} {
			if v != nil && !finite(*v) {
				return k, errors.New("comparison values must be finite")
			}
		}
		if d.LT != nil {
			k.hi = min(k.hi, math.Nextafter32(*d.LT, -inf))
		}
		if d.LE != nil {
			k.hi = min(k.hi, *d.LE)
		}
		if d.GT != nil {
			k.lo = max(k.lo, math.Nextafter32(*d.GT, inf))
		}
		if d.GE != nil {
			k.lo = max(k.lo, *d.GE)
		}
		if d.EQ != nil {
			k.lo, k.hi = max(k.lo, *d.EQ), min(k.hi, *d.EQ)
		}
		if d.NE != nil {
			k.ne = append(k.ne, *d.NE)
		}
		k.hasCmp = d.LT != nil || d.LE != nil || d.GT != nil || d.GE != nil || d.EQ != nil || d.NE != nil
		if !k.hasCmp && !k.missing {
			return k, fmt.Errorf("feature %q has no comparison (lt, le, gt, ge, eq, ne) and no \"missing\": true", d.Feature)
		}
	case d.Attribute != "":
		k.attr = true
		k.col = slices.Index(p.Attributes, d.Attribute)
		if k.col < 0 {
			return k, fmt.Errorf("attribute %q is not in the stage's attributes %q", d.Attribute, p.Attributes)
		}
		if d.LT != nil || d.LE != nil || d.GT != nil || d.GE != nil || d.EQ != nil || d.NE != nil {
			return k, errors.New("comparisons go with feature, not attribute")
		}
		values := d.Values
		if d.Value != "" {
			values = append([]string{d.Value}, values...)
		}
		if len(values) == 0 && !k.missing {
			return k, fmt.Errorf("attribute %q has no value, values or \"missing\": true", d.Attribute)
		}
		for _, v := range values {
			code := lookup(d.Attribute, v)
			if code < 0 {
				c.warn("%s %q is unknown to the engine and matches nothing", d.Attribute, v)
				continue
			}
			k.codes = append(k.codes, code)
		}
		slices.Sort(k.codes)
		k.codes = slices.Compact(k.codes)
		if len(k.codes) == 0 || k.codes[len(k.codes)-1] < maxBitmapCode {
			top := int32(0)
			if len(k.codes) > 0 {
				top = k.codes[len(k.codes)-1] + 1
			}
			k.bits = make([]uint64, top/64+1)
			if k.missing {
				k.bits[0] |= 1
			}
			for _, c := range k.codes {
				k.bits[(c+1)/64] |= 1 << (uint(c+1) % 64)
			}
		}
	default:
		return k, errors.New("give a feature or an attribute")
	}
	return k, nil
}

func (c *config) warn(format string, args ...any) {
	c.warnings = append(c.warnings, fmt.Sprintf(format, args...))
}

func finite(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }
