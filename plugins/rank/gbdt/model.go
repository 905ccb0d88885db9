// Package gbdt evaluates a gradient-boosted tree ensemble saved by XGBoost as JSON, the
// Podium reference plugin rank/gbdt, as a pure-Go package shared by the Wasm guest and the
// native pipeline.
//
// A model trained in Python ships as the file Booster.save_model("model.json") writes
// (XGBoost 1.0 or later, JSON schema): ParseModel reads it, Model.Bind maps the model's
// features onto the stage's feature columns and flattens the trees into arrays, and
// Ranker.Rank scores a column-major feature matrix without allocating. See README.md.
package gbdt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrModel reports a model file that is not a well-formed XGBoost JSON model.
var ErrModel = errors.New("gbdt: invalid model")

// ErrUnsupported reports a well-formed model that uses something this package does not
// evaluate (multi-class or multi-target output, categorical splits, gblinear, an unknown
// objective).
var ErrUnsupported = errors.New("gbdt: unsupported model")

// MaxDepth bounds the depth of a tree; deeper trees are refused by ParseModel. Evaluation
// walks every tree to its full depth, so this also bounds the work per candidate.
const MaxDepth = 256

// Transform is the function that turns a raw margin into the model's output.
type Transform uint8

// Output transforms, chosen by the model's objective.
const (
	Identity Transform = iota // regression, ranking, binary:logitraw
	Sigmoid                   // binary:logistic, reg:logistic
	Exp                       // count:poisson, reg:gamma, reg:tweedie
)

// String names the transform.
func (t Transform) String() string {
	switch t {
	case Sigmoid:
		return "sigmoid"
	case Exp:
		return "exp"
	}
	return "identity"
}

// Model is a parsed XGBoost tree ensemble. It is immutable after ParseModel and
// goroutine-safe.
type Model struct {
	// Objective is the model's objective name, e.g. "binary:logistic".
	Objective string
	// Transform maps the margin to the output that Booster.predict returns.
	Transform Transform
	// BaseMargin is the base score in margin space (logit of base_score for logistic
	// objectives, its log for exp objectives, base_score itself otherwise).
	BaseMargin float32
	// NumFeature is the number of input features the model was trained on.
	NumFeature int
	// FeatureNames are the model's feature names, or nil when it was trained without any.
	FeatureNames []string

	trees []tree
}

// tree is one regression tree in XGBoost's own node numbering (root 0, leaves have
// left == -1); Bind flattens it.
type tree struct {
	left, right []int32
	feat        []int32
	cond        []float32 // split condition, or the leaf value for leaves
	defLeft     []bool
	weight      float32 // dart tree weight, 1 for gbtree
	depth       int     // edges on the longest root-to-leaf path
}

// NumTrees returns the number of trees in the ensemble.
func (m *Model) NumTrees() int { return len(m.trees) }

// NumNodes returns the total number of nodes over all trees.
func (m *Model) NumNodes() int {
	n := 0
	for i := range m.trees {
		n += len(m.trees[i].left)
	}
	return n
}

// The JSON schema of Booster.save_model, reduced to what prediction needs.
type xgbModel struct {
	Learner *struct {
		FeatureNames      []string        `json:"feature_names"`
		FeatureTypes      []string        `json:"feature_types"`
		GradientBooster   json.RawMessage `json:"gradient_booster"`
		LearnerModelParam struct {
			BaseScore  string `json:"base_score"`
			NumClass   string `json:"num_class"`
			NumFeature string `json:"num_feature"`
			NumTarget  string `json:"num_target"`
		} `json:"learner_model_param"`
		Objective struct {
			Name string `json:"name"`
		} `json:"objective"`
	} `json:"learner"`
}

type xgbBooster struct {
	Name       string      `json:"name"`
	Model      *xgbTrees   `json:"model"` // gbtree
	GBTree     *xgbBooster `json:"gbtree"`
	WeightDrop []float32   `json:"weight_drop"` // dart
}

type xgbTrees struct {
	Param struct {
		NumParallelTree string `json:"num_parallel_tree"`
	} `json:"gbtree_model_param"`
	TreeInfo []int32   `json:"tree_info"`
	Trees    []xgbTree `json:"trees"`
}

type xgbTree struct {
	LeftChildren    []int32   `json:"left_children"`
	RightChildren   []int32   `json:"right_children"`
	SplitIndices    []int32   `json:"split_indices"`
	SplitConditions []float32 `json:"split_conditions"`
	DefaultLeft     []flag    `json:"default_left"`
	SplitType       []int32   `json:"split_type"`
	Categories      []int32   `json:"categories"`
	TreeParam       struct {
		SizeLeafVector string `json:"size_leaf_vector"`
	} `json:"tree_param"`
}

// flag decodes default_left entries, written as 0/1 by XGBoost 1.x and as booleans by
// some other writers.
type flag bool

func (f *flag) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "1", "true":
		*f = true
	case "0", "false":
		*f = false
	default:
		return fmt.Errorf("default_left entry %.20q is not 0, 1, true or false", b)
	}
	return nil
}

// ParseModel decodes an XGBoost JSON model (the output of Booster.save_model with a .json
// name, XGBoost 1.0 or later) and checks it: every tree must be a tree (each node reached
// once from the root), split features must be below num_feature, leaf values finite and
// depth at most MaxDepth. Objectives with a sigmoid output (binary:logistic, reg:logistic),
// an exp output (count:poisson, reg:gamma, reg:tweedie) or the raw margin (reg:*, rank:*,
// binary:logitraw) are supported, with the gbtree and dart boosters. Errors wrap ErrModel or
// ErrUnsupported and name the tree and node at fault.
func ParseModel(data []byte) (*Model, error) {
	var raw xgbModel
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrModel, err)
	}
	l := raw.Learner
	if l == nil {
		return nil, fmt.Errorf("%w: no \"learner\" object (want the JSON that Booster.save_model writes)", ErrModel)
	}
	m := &Model{Objective: l.Objective.Name}
	p := l.LearnerModelParam
	if nc, err := paramInt("num_class", p.NumClass); err != nil {
		return nil, err
	} else if nc > 1 {
		return nil, fmt.Errorf("%w: %d classes (multi-class models are not supported)", ErrUnsupported, nc)
	}
	if nt, err := paramInt("num_target", p.NumTarget); err != nil {
		return nil, err
	} else if nt > 1 {
		return nil, fmt.Errorf("%w: %d targets (multi-target models are not supported)", ErrUnsupported, nt)
	}
	nf, err := paramInt("num_feature", p.NumFeature)
	if err != nil {
		return nil, err
	}
	if nf <= 0 || nf > 1<<20 {
		return nil, fmt.Errorf("%w: num_feature %q must be between 1 and %d", ErrModel, p.NumFeature, 1<<20)
	}
	m.NumFeature = nf
	if len(l.FeatureNames) > 0 {
		if len(l.FeatureNames) != nf {
			return nil, fmt.Errorf("%w: %d feature_names for num_feature %d", ErrModel, len(l.FeatureNames), nf)
		}
		seen := make(map[string]bool, nf)
		for _, n := range l.FeatureNames {
			if seen[n] {
				return nil, fmt.Errorf("%w: feature name %q listed twice", ErrModel, n)
			}
			seen[n] = true
		}
		m.FeatureNames = l.FeatureNames
	}
	for i, t := range l.FeatureTypes {
		if t == "c" {
			return nil, fmt.Errorf("%w: feature %d is categorical", ErrUnsupported, i)
		}
	}
	base, err := baseScore(p.BaseScore)
	if err != nil {
		return nil, err
	}
	if err := m.setObjective(base); err != nil {
		return nil, err
	}
	if err := m.readBooster(l.GradientBooster); err != nil {
		return nil, err
	}
	return m, nil
}

func paramInt(name, s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%w: learner_model_param %s %q is not an integer", ErrModel, name, s)
	}
	return v, nil
}

// baseScore parses base_score: "5E-1" in XGBoost 1.x, "[5E-1]" (one per target) in 2.1+.
func baseScore(s string) (float64, error) {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]") {
		t = strings.TrimSpace(t[1 : len(t)-1])
		if strings.Contains(t, ",") {
			return 0, fmt.Errorf("%w: base_score %q has several targets", ErrUnsupported, s)
		}
	}
	if t == "" {
		return 0.5, nil // XGBoost's default
	}
	v, err := strconv.ParseFloat(t, 32)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%w: base_score %q is not a finite number", ErrModel, s)
	}
	return v, nil
}

// setObjective sets Transform and BaseMargin from the objective, the way XGBoost's
// ProbToMargin and PredTransform do.
func (m *Model) setObjective(base float64) error {
	var margin float64
	switch m.Objective {
	case "binary:logistic", "reg:logistic", "binary:logitraw":
		if base <= 0 || base >= 1 {
			return fmt.Errorf("%w: base_score %g of %s must be in (0, 1)", ErrModel, base, m.Objective)
		}
		margin = -math.Log(1/base - 1)
		m.Transform = Sigmoid
		if m.Objective == "binary:logitraw" {
			m.Transform = Identity
		}
	case "count:poisson", "reg:gamma", "reg:tweedie":
		if base <= 0 {
			return fmt.Errorf("%w: base_score %g of %s must be positive", ErrModel, base, m.Objective)
		}
		margin = math.Log(base)
		m.Transform = Exp
	case "reg:squarederror", "reg:linear", "reg:squaredlogerror", "reg:pseudohubererror",
		"reg:absoluteerror", "reg:quantileerror", "rank:pairwise", "rank:ndcg", "rank:map":
		margin = base
		m.Transform = Identity
	case "":
		return fmt.Errorf("%w: no objective name", ErrModel)
	default:
		return fmt.Errorf("%w: objective %q (supported: binary:logistic, binary:logitraw, reg:logistic, "+
			"reg:squarederror and other reg:*, rank:pairwise, rank:ndcg, rank:map, count:poisson, reg:gamma, reg:tweedie)",
			ErrUnsupported, m.Objective)
	}
	m.BaseMargin = float32(margin)
	return nil
}

func (m *Model) readBooster(data json.RawMessage) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return fmt.Errorf("%w: no gradient_booster", ErrModel)
	}
	var b xgbBooster
	if err := json.Unmarshal(data, &b); err != nil {
		return fmt.Errorf("%w: gradient_booster: %v", ErrModel, err)
	}
	var trees *xgbTrees
	var weights []float32
	switch b.Name {
	case "gbtree":
		trees = b.Model
	case "dart":
		if b.GBTree != nil {
			trees = b.GBTree.Model
		}
		weights = b.WeightDrop
	case "gblinear":
		return fmt.Errorf("%w: booster gblinear (only tree boosters, gbtree and dart)", ErrUnsupported)
	default:
		return fmt.Errorf("%w: booster %q (want gbtree or dart)", ErrModel, b.Name)
	}
	if trees == nil {
		return fmt.Errorf("%w: %s booster has no model", ErrModel, b.Name)
	}
	if len(trees.Trees) == 0 {
		return fmt.Errorf("%w: no trees", ErrModel)
	}
	if weights != nil && len(weights) != len(trees.Trees) {
		return fmt.Errorf("%w: %d dart weights for %d trees", ErrModel, len(weights), len(trees.Trees))
	}
	for i, g := range trees.TreeInfo {
		if g != 0 {
			return fmt.Errorf("%w: tree %d belongs to output group %d (multi-output)", ErrUnsupported, i, g)
		}
	}
	m.trees = make([]tree, len(trees.Trees))
	for i := range trees.Trees {
		w := float32(1)
		if weights != nil {
			w = weights[i]
			if isBad(w) {
				return fmt.Errorf("%w: tree %d has dart weight %v", ErrModel, i, w)
			}
		}
		if err := m.readTree(&m.trees[i], &trees.Trees[i], w); err != nil {
			return fmt.Errorf("tree %d: %w", i, err)
		}
	}
	return nil
}

func isBad(v float32) bool { return v != v || math.IsInf(float64(v), 0) }

func (m *Model) readTree(t *tree, x *xgbTree, w float32) error {
	nn := len(x.LeftChildren)
	if nn == 0 {
		return fmt.Errorf("%w: empty tree", ErrModel)
	}
	if len(x.RightChildren) != nn || len(x.SplitIndices) != nn || len(x.SplitConditions) != nn ||
		len(x.DefaultLeft) != nn {
		return fmt.Errorf("%w: node arrays differ in length (left_children %d, right_children %d, "+
			"split_indices %d, split_conditions %d, default_left %d)", ErrModel, nn, len(x.RightChildren),
			len(x.SplitIndices), len(x.SplitConditions), len(x.DefaultLeft))
	}
	if s := x.TreeParam.SizeLeafVector; s != "" && s != "0" && s != "1" {
		return fmt.Errorf("%w: vector leaves (size_leaf_vector %s)", ErrUnsupported, s)
	}
	for i, st := range x.SplitType {
		if st != 0 {
			return fmt.Errorf("%w: node %d is a categorical split", ErrUnsupported, i)
		}
	}
	if len(x.Categories) > 0 {
		return fmt.Errorf("%w: categorical splits", ErrUnsupported)
	}
	t.left, t.right, t.feat, t.cond = x.LeftChildren, x.RightChildren, x.SplitIndices, x.SplitConditions
	t.defLeft = make([]bool, nn)
	for i, d := range x.DefaultLeft {
		t.defLeft[i] = bool(d)
	}
	t.weight = w
	// Walk from the root: every node must be reached exactly once (so it is a tree, with
	// no cycle), children in range, depth bounded.
	type item struct{ node, depth int32 }
	seen := make([]bool, nn)
	stack := []item{{0, 0}}
	seen[0] = true
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		i := it.node
		l, r := t.left[i], t.right[i]
		if l == -1 {
			if r != -1 {
				return fmt.Errorf("%w: node %d has right child %d but no left child", ErrModel, i, r)
			}
			if isBad(t.cond[i]) {
				return fmt.Errorf("%w: leaf %d has value %v", ErrModel, i, t.cond[i])
			}
			t.depth = max(t.depth, int(it.depth))
			continue
		}
		if it.depth >= MaxDepth {
			return fmt.Errorf("%w: deeper than %d levels", ErrUnsupported, MaxDepth)
		}
		if f := t.feat[i]; f < 0 || int(f) >= m.NumFeature {
			return fmt.Errorf("%w: node %d splits on feature %d, want 0 to %d", ErrModel, i, f, m.NumFeature-1)
		}
		if t.cond[i] != t.cond[i] {
			return fmt.Errorf("%w: node %d has split condition NaN", ErrModel, i)
		}
		for _, c := range [2]int32{l, r} {
			if c < 0 || int(c) >= nn {
				return fmt.Errorf("%w: node %d has child %d, outside 0 to %d", ErrModel, i, c, nn-1)
			}
			if seen[c] {
				return fmt.Errorf("%w: node %d is reached twice", ErrModel, c)
			}
			seen[c] = true
			stack = append(stack, item{c, it.depth + 1})
		}
	}
	return nil
}
