package gbdt

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// demoColumns are the 32 item features of the demo catalog (engine/demo), in order. The
// fixture models use the first eight by name.
var demoColumns = func() []string {
	c := []string{"price", "popularity", "rating", "rating_count", "margin", "age_days",
		"discount", "ctr_7d", "cvr_7d", "return_rate"}
	for i := len(c); i < 32; i++ {
		c = append(c, "q"+strconv.Itoa(i-10))
	}
	return c
}()

// benchInput returns n candidates × 32 demo columns shaped like the fixture data, with
// missingRate of the values NaN.
func benchInput(n int, missingRate float64) []float32 {
	rng := rand.New(rand.NewPCG(3, 4))
	feat := make([]float32, len(demoColumns)*n)
	for i := 0; i < n; i++ {
		v := []float64{math.Exp(3 + 0.6*rng.NormFloat64()), rng.ExpFloat64() * 3, 3.8 + 0.6*rng.NormFloat64(),
			math.Floor(rng.Float64() * 200), 0.1 + 0.3*rng.Float64(), math.Floor(rng.Float64() * 720),
			math.Max(0, 0.3*rng.NormFloat64()), 0.01 + 0.05*rng.Float64()}
		for j := range demoColumns {
			x := rng.Float64()
			if j < len(v) {
				x = v[j]
			}
			if rng.Float64() < missingRate {
				x = math.NaN()
			}
			feat[j*n+i] = float32(x)
		}
	}
	return feat
}

// BenchmarkRank scores 1000 candidates × 32 features with the fixture models, beside the
// alternatives the evaluator was chosen over (see RATIONALE, "Why level-synchronous
// blocks"): candidate-major (each candidate through every tree, early exit at a leaf) and
// tree-major over blocks of 1 to all candidates.
func BenchmarkRank(b *testing.B) {
	const n = 1000
	for _, name := range []string{"logistic", "squarederror"} {
		_, data := loadFixture(b, name)
		m, err := ParseModel(data)
		if err != nil {
			b.Fatal(err)
		}
		cols := demoColumns
		if m.FeatureNames == nil {
			cols = demoColumns // by order: the first 8 columns
		}
		r, err := m.Bind(cols, false)
		if err != nil {
			b.Fatal(err)
		}
		colOf := make([]int32, m.NumFeature)
		for f := range colOf {
			colOf[f] = int32(f) // the demo columns start with the model's features, in order
		}
		for _, missing := range []float64{0, 0.1} {
			feat := benchInput(n, missing)
			out := make([]float32, n)
			run := func(label string, f func()) {
				b.Run(fmt.Sprintf("%s/missing=%g/%s", name, missing, label), func(b *testing.B) {
					b.ReportAllocs()
					b.SetBytes(int64(4 * len(feat)))
					for b.Loop() {
						f()
					}
				})
			}
			run("Rank", func() { _ = r.Rank(feat, out) })
			run("candidate-major", func() {
				for i := range out {
					out[i] = refPredict(m, colOf, feat, n, i)
				}
			})
			for _, bs := range []int{1, 16, 32, 64, 128, 256, n} {
				acc, idx := make([]float32, bs), make([]int32, bs)
				run("tree-major-block"+strconv.Itoa(bs), func() { rankBlocked(r.c, feat, out, acc, idx, false) })
			}
			acc, idx := make([]float32, block), make([]int32, block)
			run("branchy-block64", func() { rankBlocked(r.c, feat, out, acc, idx, true) })
			nb := nanBranch(m, colOf)
			run("nan-branch-block64", func() { nb.rank(feat, out) })
		}
	}
}

// rankBlocked is Ranker.Rank with the block size len(acc), for the benchmark. branchy
// picks the child with an if, which the compiler turns into a branch.
func rankBlocked(c *compiled, feat, out, acc []float32, idx []int32, branchy bool) {
	n, bs := len(out), len(acc)
	for start := 0; start < n; start += bs {
		bn := min(bs, n-start)
		acc, idx := acc[:bn], idx[:bn]
		for i := range acc {
			acc[i] = c.base
		}
		for t, root := range c.roots {
			for i := range idx {
				idx[i] = root
			}
			for d := c.depths[t]; d > 0; d-- {
				if !branchy {
					walk(c.nodes, feat[start:], n, idx)
					continue
				}
				for i, at := range idx {
					nd := &c.nodes[at]
					x := feat[int(nd.col)*n+start+i]
					next := nd.l + nd.flip
					if x*nd.sign < nd.thr {
						next = nd.l + (1 ^ nd.flip)
					}
					idx[i] = next
				}
			}
			for i, at := range idx {
				acc[i] += c.leaf[at]
			}
		}
		copy(out[start:], acc)
	}
}

// nanBranchModel is the flattening without the sign trick: the split keeps XGBoost's
// x < condition and a missing value takes a branch to its default child.
type nanBranchModel struct {
	nodes  []nbNode
	leaf   []float32
	roots  []int32
	depths []int32
	base   float32
}

type nbNode struct {
	col         int32
	thr         float32
	left, right int32
	defLeft     bool
}

func nanBranch(m *Model, colOf []int32) *nanBranchModel {
	nb := &nanBranchModel{base: m.BaseMargin}
	for ti := range m.trees {
		t := &m.trees[ti]
		start := int32(len(nb.nodes))
		nb.roots = append(nb.roots, start)
		nb.depths = append(nb.depths, int32(t.depth))
		order := []int32{0}
		for q := 0; q < len(order); q++ {
			i := order[q]
			if t.left[i] == -1 {
				self := start + int32(q)
				nb.nodes = append(nb.nodes, nbNode{left: self, right: self})
				nb.leaf = append(nb.leaf, t.cond[i]*t.weight)
				continue
			}
			l := start + int32(len(order))
			order = append(order, t.left[i], t.right[i])
			nb.nodes = append(nb.nodes, nbNode{col: colOf[t.feat[i]], thr: t.cond[i], left: l, right: l + 1, defLeft: t.defLeft[i]})
			nb.leaf = append(nb.leaf, 0)
		}
	}
	return nb
}

func (nb *nanBranchModel) rank(feat, out []float32) {
	var accb [block]float32
	var idxb [block]int32
	n := len(out)
	for start := 0; start < n; start += block {
		bn := min(block, n-start)
		acc, idx := accb[:bn], idxb[:bn]
		for i := range acc {
			acc[i] = nb.base
		}
		for t, root := range nb.roots {
			for i := range idx {
				idx[i] = root
			}
			for d := nb.depths[t]; d > 0; d-- {
				nb.walk(feat[start:], n, idx)
			}
			for i, at := range idx {
				acc[i] += nb.leaf[at]
			}
		}
		copy(out[start:], acc)
	}
}

func (nb *nanBranchModel) walk(x []float32, stride int, idx []int32) {
	for i, at := range idx {
		nd := &nb.nodes[at]
		l, r := nd.left, nd.right
		v := x[int(nd.col)*stride+i]
		if v < nd.thr {
			r = l
		}
		if v != v && nd.defLeft {
			r = l
		}
		idx[i] = r
	}
}

// TestBenchVariantsAgree keeps the benchmark's alternatives honest: they compute what
// Rank computes.
func TestBenchVariantsAgree(t *testing.T) {
	_, data := loadFixture(t, "logistic")
	m, err := ParseModel(data)
	if err != nil {
		t.Fatal(err)
	}
	r, err := m.Bind(demoColumns, true)
	if err != nil {
		t.Fatal(err)
	}
	colOf := make([]int32, m.NumFeature)
	for f := range colOf {
		colOf[f] = int32(f)
	}
	n := 300
	feat := hardInputs(m, colOf, len(demoColumns), n, 9)
	want := make([]float32, n)
	if err := r.Rank(feat, want); err != nil {
		t.Fatal(err)
	}
	got := make([]float32, n)
	for _, bs := range []int{1, 7, n} {
		for _, branchy := range []bool{false, true} {
			rankBlocked(r.c, feat, got, make([]float32, bs), make([]int32, bs), branchy)
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("block %d branchy %v candidate %d: %v, want %v", bs, branchy, i, got[i], want[i])
				}
			}
		}
	}
	nanBranch(m, colOf).rank(feat, got)
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("nan-branch candidate %d: %v, want %v", i, got[i], want[i])
		}
	}
}
