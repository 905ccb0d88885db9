package gbdt

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// ErrParams reports stage params that cannot configure a Ranker.
var ErrParams = errors.New("gbdt: invalid params")

// ErrInput reports a feature matrix whose size does not match the ranker's columns.
var ErrInput = errors.New("gbdt: invalid input")

// Params configure the plugin. They are the JSON object the host passes at init (see
// sdk/ABI.md §2): the manifest's defaults overlaid by the stage's params, with "features"
// (and "attributes") set by the host.
type Params struct {
	// Model is the XGBoost JSON model: the object itself (the engine inlines a model file
	// given in the stage's "files"), or a JSON string holding it.
	Model json.RawMessage `json:"model,omitempty"`
	// ModelB64 is the model JSON in standard base64, an alternative to Model.
	ModelB64 string `json:"model_b64,omitempty"`
	// Features names the feature columns, in the order the host lays them out.
	Features []string `json:"features"`
	// Attributes is set by the host; the plugin reads none.
	Attributes []string `json:"attributes,omitempty"`
	// Output is "transformed" (the default: what Booster.predict returns, e.g. a
	// probability) or "margin" (the raw sum of the trees, as predict(output_margin=True)).
	// Both order candidates the same way; the margin skips the exp.
	Output string `json:"output,omitempty"`
}

// DecodeParams decodes params JSON strictly (unknown keys are an error, so that a typo is
// not silently ignored) and returns the model JSON it carries.
func DecodeParams(data []byte) (Params, []byte, error) {
	var p Params
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, nil, fmt.Errorf("%w: %v", ErrParams, err)
	}
	if dec.More() {
		return p, nil, fmt.Errorf("%w: trailing data after the params object", ErrParams)
	}
	switch p.Output {
	case "", "transformed", "margin":
	default:
		return p, nil, fmt.Errorf("%w: output %q, want \"transformed\" or \"margin\"", ErrParams, p.Output)
	}
	model := bytes.TrimSpace(p.Model)
	if len(model) == 0 || string(model) == "null" {
		model = nil
	}
	switch {
	case model != nil && p.ModelB64 != "":
		return p, nil, fmt.Errorf("%w: both model and model_b64 are set", ErrParams)
	case p.ModelB64 != "":
		b, err := base64.StdEncoding.DecodeString(p.ModelB64)
		if err != nil {
			return p, nil, fmt.Errorf("%w: model_b64: %v", ErrParams, err)
		}
		return p, b, nil
	case model == nil:
		return p, nil, fmt.Errorf("%w: no model (give \"model\" or \"model_b64\")", ErrParams)
	case model[0] == '"':
		var s string
		if err := json.Unmarshal(model, &s); err != nil {
			return p, nil, fmt.Errorf("%w: model: %v", ErrParams, err)
		}
		return p, []byte(s), nil
	}
	return p, model, nil
}

// New builds a Ranker from params JSON (see Params): it decodes the model, binds it to the
// feature columns and preallocates its scratch.
func New(params []byte) (*Ranker, error) {
	p, model, err := DecodeParams(params)
	if err != nil {
		return nil, err
	}
	m, err := ParseModel(model)
	if err != nil {
		return nil, err
	}
	return m.Bind(p.Features, p.Output == "margin")
}

// block is the number of candidates evaluated together: their walks down one tree are
// independent, so the CPU overlaps them (see RATIONALE, "Why level-synchronous blocks").
const block = 64

// node is one flattened tree node. Its children are at l (left) and l+1 (right). With
// c = 1 if x·sign < thr else 0, a candidate moves to l + (c XOR flip): sign, thr and flip are
// chosen at Bind so that a missing value (NaN, for which every comparison is false, c = 0)
// goes to the default child. A leaf has l = itself, flip 0 and thr NaN, so it stays put.
type node struct {
	col  int32   // feature column
	thr  float32 // threshold, possibly negated (see sign)
	sign float32 // 1 or -1
	l    int32   // left child, index into nodes; the right child is l+1
	flip int32   // 1: c = 1 means left; 0: c = 1 means right
}

// compiled is a model bound to feature columns: immutable, shared by a Ranker's clones.
type compiled struct {
	nodes     []node
	leaf      []float32 // leaf value times the tree weight, by node; 0 for splits
	roots     []int32
	depths    []int32
	ncols     int
	base      float32
	transform Transform
}

// Ranker scores candidates with a bound model. It holds scratch buffers, so it is not
// goroutine-safe: use one per goroutine (Clone shares the model and is cheap).
type Ranker struct {
	c   *compiled
	acc [block]float32
	idx [block]int32
}

// Bind maps the model's features onto feature columns and flattens the trees. With feature
// names in the model, model feature f reads the column named FeatureNames[f] in columns
// (which may hold other columns too, in any order); a model feature missing from columns is
// an error. Without names, model feature f reads column f, and columns must have at least
// NumFeature entries. margin selects the raw margin output instead of the transformed one.
func (m *Model) Bind(columns []string, margin bool) (*Ranker, error) {
	colOf := make([]int32, m.NumFeature)
	if m.FeatureNames != nil {
		index := make(map[string]int32, len(columns))
		for i, c := range columns {
			index[c] = int32(i)
		}
		for f, name := range m.FeatureNames {
			i, ok := index[name]
			if !ok {
				return nil, fmt.Errorf("%w: the model needs feature %q, which is not in the stage's features %q",
					ErrParams, name, columns)
			}
			colOf[f] = i
		}
	} else {
		if len(columns) < m.NumFeature {
			return nil, fmt.Errorf("%w: the model has %d features and no feature names, so it needs at least "+
				"%d feature columns in model order; the stage has %d", ErrParams, m.NumFeature, m.NumFeature, len(columns))
		}
		for f := range colOf {
			colOf[f] = int32(f)
		}
	}
	c := &compiled{ncols: len(columns), base: m.BaseMargin, transform: m.Transform}
	if margin {
		c.transform = Identity
	}
	c.nodes = make([]node, 0, m.NumNodes())
	c.leaf = make([]float32, 0, m.NumNodes())
	for i := range m.trees {
		c.add(&m.trees[i], colOf)
	}
	return &Ranker{c: c}, nil
}

// add appends a tree in breadth-first order, numbering only reachable nodes.
func (c *compiled) add(t *tree, colOf []int32) {
	start := int32(len(c.nodes))
	c.roots = append(c.roots, start)
	c.depths = append(c.depths, int32(t.depth))
	order := []int32{0} // XGBoost node ids in BFS order; position = flat index - start
	for q := 0; q < len(order); q++ {
		i := order[q]
		if t.left[i] == -1 {
			self := start + int32(q)
			c.nodes = append(c.nodes, node{l: self, sign: 1, thr: float32(math.NaN())})
			c.leaf = append(c.leaf, t.cond[i]*t.weight)
			continue
		}
		l := start + int32(len(order))
		order = append(order, t.left[i], t.right[i])
		// x < thr goes left and NaN right: c = x < thr, left when c = 1.
		n := node{col: colOf[t.feat[i]], thr: t.cond[i], sign: 1, l: l, flip: 1}
		if t.defLeft[i] {
			// NaN goes left too: go right iff x >= thr, that is -x <= -thr, that is
			// -x < the next float above -thr; c = that, right when c = 1.
			n.sign = -1
			n.thr = math.Nextafter32(-t.cond[i], float32(math.Inf(1)))
			n.flip = 0
		}
		c.nodes = append(c.nodes, n)
		c.leaf = append(c.leaf, 0)
	}
}

// Clone returns a Ranker sharing r's bound model with its own scratch.
func (r *Ranker) Clone() *Ranker { return &Ranker{c: r.c} }

// Columns returns the number of feature columns the ranker was bound to.
func (r *Ranker) Columns() int { return r.c.ncols }

// Rank sets out[i] to the model's prediction for candidate i, for the n = len(out)
// candidates whose features are the column-major matrix feat (feature j of candidate i at
// feat[j·n+i], NaN when missing). feat must hold Columns()·n values. It does not allocate.
func (r *Ranker) Rank(feat, out []float32) error {
	n := len(out)
	if len(feat) != r.c.ncols*n {
		return fmt.Errorf("%w: %d feature values for %d candidates × %d columns", ErrInput, len(feat), n, r.c.ncols)
	}
	c := r.c
	nodes, leaf := c.nodes, c.leaf
	for start := 0; start < n; start += block {
		bn := min(block, n-start)
		acc, idx := r.acc[:bn], r.idx[:bn]
		for i := range acc {
			acc[i] = c.base
		}
		for t, root := range c.roots {
			for i := range idx {
				idx[i] = root
			}
			// Level-synchronous walk: every candidate of the block moves one level per pass;
			// those at a leaf stay put. The walks are independent, so they overlap.
			for d := c.depths[t]; d > 0; d-- {
				walk(nodes, feat[start:], n, idx)
			}
			for i, at := range idx {
				acc[i] += leaf[at]
			}
		}
		c.transform.Apply(acc, out[start:start+bn])
	}
	return nil
}

// walk moves every candidate of a block one level down: candidate i, at node idx[i],
// reads its feature from column col at x[col·stride+i]. The comparison becomes a 0 or 1 with
// no branch (SETcc natively, the i32 result of f32.lt in Wasm). The loop is unrolled by 8:
// the Go Wasm backend sends every loop back-edge through its block dispatcher, and the unroll
// made the Wasm guest 1.5× faster (natively it changes nothing).
func walk(nodes []node, x []float32, stride int, idx []int32) {
	i := 0
	for ; i+8 <= len(idx); i += 8 {
		v := idx[i : i+8 : i+8]
		v[0] = step(nodes, x, stride, v[0], i)
		v[1] = step(nodes, x, stride, v[1], i+1)
		v[2] = step(nodes, x, stride, v[2], i+2)
		v[3] = step(nodes, x, stride, v[3], i+3)
		v[4] = step(nodes, x, stride, v[4], i+4)
		v[5] = step(nodes, x, stride, v[5], i+5)
		v[6] = step(nodes, x, stride, v[6], i+6)
		v[7] = step(nodes, x, stride, v[7], i+7)
	}
	for ; i < len(idx); i++ {
		idx[i] = step(nodes, x, stride, idx[i], i)
	}
}

// step returns the node after at for candidate i.
func step(nodes []node, x []float32, stride int, at int32, i int) int32 {
	nd := &nodes[at]
	var c int32
	if x[int(nd.col)*stride+i]*nd.sign < nd.thr {
		c = 1
	}
	return nd.l + (c ^ nd.flip)
}

// Apply writes the transform of margins to out (which may be margins itself), clamped to
// finite float32. The sigmoid is computed as the engine's podium.sigmoid kernel computes it.
func (t Transform) Apply(margins, out []float32) {
	switch t {
	case Sigmoid:
		for i, v := range margins {
			out[i] = float32(1 / (1 + math.Exp(-float64(v))))
		}
	case Exp:
		for i, v := range margins {
			out[i] = clamp(float32(math.Exp(float64(v))))
		}
	default:
		for i, v := range margins {
			out[i] = clamp(v)
		}
	}
}

// clamp bounds v to finite float32 (sums of finite leaves are never NaN). It compares
// rather than calling the min and max builtins, which for floats are runtime calls in the
// Go Wasm backend.
func clamp(v float32) float32 {
	switch {
	case v > math.MaxFloat32:
		return math.MaxFloat32
	case v < -math.MaxFloat32:
		return -math.MaxFloat32
	}
	return v
}
