package gbdt

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixture is what testdata/gen.py writes beside each model: inputs (null = missing) and
// xgboost's own predictions.
type fixture struct {
	Note     string       `json:"note"`
	Model    string       `json:"model"`
	Features []string     `json:"features"`
	Rows     [][]*float64 `json:"rows"`
	Margin   []float64    `json:"margin"`
	Pred     []float64    `json:"pred"`
}

var fixtureNames = []string{"logistic", "squarederror", "pairwise", "dart"}

func loadFixture(t testing.TB, name string) (*fixture, []byte) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".fixture.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f fixture
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	model, err := os.ReadFile(filepath.Join("testdata", f.Model))
	if err != nil {
		t.Fatal(err)
	}
	return &f, model
}

// columnMajor lays rows out as the host does: column j of the plugin's columns holds the
// model feature named columns[j] (or, for models without names, model feature j); columns
// the model does not know are filled with junk.
func columnMajor(f *fixture, columns []string) []float32 {
	n := len(f.Rows)
	pos := map[string]int{}
	for i, name := range f.Features {
		pos[name] = i
	}
	feat := make([]float32, len(columns)*n)
	for j, c := range columns {
		src, ok := pos[c]
		for i, row := range f.Rows {
			switch {
			case !ok:
				feat[j*n+i] = float32(i) * 7.5
			case row[src] == nil:
				feat[j*n+i] = float32(math.NaN())
			default:
				feat[j*n+i] = float32(*row[src])
			}
		}
	}
	return feat
}

func close32(got float32, want float64) bool {
	return math.Abs(float64(got)-want) <= 1e-5*math.Max(1, math.Abs(want))
}

// TestXGBoostFixtures is the realism check: models trained by xgboost in Python
// (testdata/gen.py) predict here what xgboost predicted there, within 1e-5.
func TestXGBoostFixtures(t *testing.T) {
	for _, name := range fixtureNames {
		t.Run(name, func(t *testing.T) {
			f, data := loadFixture(t, name)
			m, err := ParseModel(data)
			if err != nil {
				t.Fatal(err)
			}
			columns := append([]string(nil), f.Features...)
			if m.FeatureNames != nil {
				// Names map columns: shuffle them and add some the model does not use.
				rand.New(rand.NewPCG(1, 2)).Shuffle(len(columns), func(i, j int) {
					columns[i], columns[j] = columns[j], columns[i]
				})
				columns = append([]string{"unused_a"}, append(columns, "unused_b")...)
			} else {
				columns = append(columns, "unused_b") // by order: extra columns at the end
			}
			feat := columnMajor(f, columns)
			n := len(f.Rows)
			for _, margin := range []bool{true, false} {
				r, err := m.Bind(columns, margin)
				if err != nil {
					t.Fatal(err)
				}
				out := make([]float32, n)
				if err := r.Rank(feat, out); err != nil {
					t.Fatal(err)
				}
				want := f.Pred
				if margin {
					want = f.Margin
				}
				exact := 0
				for i := range out {
					if !close32(out[i], want[i]) {
						t.Errorf("margin=%v row %d: got %v, xgboost %v", margin, i, out[i], want[i])
					}
					if out[i] == float32(want[i]) {
						exact++
					}
				}
				t.Logf("%s margin=%v: %d of %d rows bit-identical to xgboost", f.Note, margin, exact, n)
			}
		})
	}
}

// refPredict is the textbook evaluator: walk each tree in XGBoost's own node numbering,
// one candidate at a time. Rank must agree with it bit for bit.
func refPredict(m *Model, colOf []int32, feat []float32, n, row int) float32 {
	acc := m.BaseMargin
	for t := range m.trees {
		tr := &m.trees[t]
		i := int32(0)
		for tr.left[i] != -1 {
			x := feat[int(colOf[tr.feat[i]])*n+row]
			switch {
			case x != x:
				if tr.defLeft[i] {
					i = tr.left[i]
				} else {
					i = tr.right[i]
				}
			case x < tr.cond[i]:
				i = tr.left[i]
			default:
				i = tr.right[i]
			}
		}
		acc += tr.cond[i] * tr.weight
	}
	return acc
}

// hardInputs returns n candidates × ncols columns drawn to hit the split conditions of m
// exactly, just above and below them, NaN, ±Inf and extremes.
func hardInputs(m *Model, colOf []int32, ncols, n int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 7))
	feat := make([]float32, ncols*n)
	for i := range feat {
		feat[i] = float32(rng.NormFloat64() * 100)
	}
	var conds [][2]float32 // (column, condition)
	for t := range m.trees {
		tr := &m.trees[t]
		for i := range tr.left {
			if tr.left[i] != -1 {
				conds = append(conds, [2]float32{float32(colOf[tr.feat[i]]), tr.cond[i]})
			}
		}
	}
	specials := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)),
		math.MaxFloat32, -math.MaxFloat32, 0, float32(math.Copysign(0, -1))}
	for i := range feat {
		switch rng.IntN(6) {
		case 0, 1:
			if len(conds) == 0 {
				continue
			}
			c := conds[rng.IntN(len(conds))]
			v := c[1]
			switch rng.IntN(3) {
			case 1:
				v = math.Nextafter32(v, float32(math.Inf(1)))
			case 2:
				v = math.Nextafter32(v, float32(math.Inf(-1)))
			}
			row := i % n
			feat[int(c[0])*n+row] = v
		case 2:
			feat[i] = specials[rng.IntN(len(specials))]
		}
	}
	return feat
}

func TestRankMatchesReference(t *testing.T) {
	for _, name := range fixtureNames {
		t.Run(name, func(t *testing.T) {
			f, data := loadFixture(t, name)
			m, err := ParseModel(data)
			if err != nil {
				t.Fatal(err)
			}
			colOf := make([]int32, m.NumFeature)
			for i := range colOf {
				colOf[i] = int32(i)
			}
			r, err := m.Bind(f.Features, true)
			if err != nil {
				t.Fatal(err)
			}
			// Sizes around the block length, and 1.
			for _, n := range []int{1, block - 1, block, block + 1, 3*block + 5} {
				feat := hardInputs(m, colOf, len(f.Features), n, uint64(n))
				out := make([]float32, n)
				if err := r.Rank(feat, out); err != nil {
					t.Fatal(err)
				}
				for i := range out {
					if want := refPredict(m, colOf, feat, n, i); out[i] != want {
						t.Fatalf("n=%d candidate %d: Rank %v, reference %v", n, i, out[i], want)
					}
				}
			}
		})
	}
}

// stump is a one-split model written by hand: feature "a" < 0.5 scores -1, else 2, with
// base_score 0.5 (so margins 0.5-1 and 0.5+2).
func stump(objective, defaultLeft string) string {
	return `{"learner":{"feature_names":["a"],"feature_types":["float"],
	"learner_model_param":{"base_score":"5E-1","num_class":"0","num_feature":"1","num_target":"1"},
	"objective":{"name":"` + objective + `"},
	"gradient_booster":{"name":"gbtree","model":{"gbtree_model_param":{"num_trees":"1"},"tree_info":[0],
	"trees":[{"left_children":[1,-1,-1],"right_children":[2,-1,-1],"split_indices":[0,0,0],
	"split_conditions":[0.5,-1,2],"default_left":[` + defaultLeft + `,0,0],"split_type":[0,0,0],
	"categories":[],"base_weights":[0,0,0]}]}}},"version":[1,7,4]}`
}

// dartStump is stump as a dart booster with tree weight 0.5, reg:logistic.
func dartStump() string {
	s := strings.Replace(stump("reg:logistic", "0"), `"name":"gbtree","model":{`,
		`"name":"dart","weight_drop":[0.5],"gbtree":{"name":"gbtree","model":{`, 1)
	return strings.Replace(s, `,"version"`, `},"version"`, 1)
}

func TestDartStump(t *testing.T) {
	m, err := ParseModel([]byte(dartStump()))
	if err != nil {
		t.Fatal(err)
	}
	r, err := m.Bind([]string{"a"}, true)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, 2)
	if err := r.Rank([]float32{0, 1}, out); err != nil || out[0] != -0.5 || out[1] != 1 {
		t.Fatalf("got %v %v, want margins 0.5·-1 and 0.5·2", out, err)
	}
}

func TestStumpSemantics(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	sig := func(x float64) float32 { return float32(1 / (1 + math.Exp(-x))) }
	tests := []struct {
		objective, defLeft string
		x                  float32
		want               float32
	}{
		{"reg:squarederror", "0", 0.4, -0.5},
		{"reg:squarederror", "0", 0.5, 2.5}, // a tie goes right: the test is x < condition
		{"reg:squarederror", "0", math.Nextafter32(0.5, 0), -0.5},
		{"reg:squarederror", "0", nan, 2.5}, // missing follows default_left = 0: right
		{"reg:squarederror", "1", nan, -0.5},
		{"reg:squarederror", "true", nan, -0.5},
		{"reg:squarederror", "1", 0.5, 2.5},
		{"reg:squarederror", "1", 0.4, -0.5},
		{"reg:squarederror", "1", inf, 2.5},
		{"reg:squarederror", "1", -inf, -0.5},
		{"reg:squarederror", "0", -inf, -0.5},
		{"rank:pairwise", "0", 0.7, 2.5},
		{"binary:logistic", "0", 0.7, sig(2)}, // logit(0.5) = 0
		{"binary:logistic", "0", 0.1, sig(-1)},
		{"binary:logitraw", "0", 0.1, -1},
		{"count:poisson", "0", 0.7, float32(math.Exp(math.Log(0.5) + 2))},
	}
	for _, tc := range tests {
		m, err := ParseModel([]byte(stump(tc.objective, tc.defLeft)))
		if err != nil {
			t.Fatalf("%s: %v", tc.objective, err)
		}
		r, err := m.Bind([]string{"a"}, false)
		if err != nil {
			t.Fatal(err)
		}
		out := []float32{0}
		if err := r.Rank([]float32{tc.x}, out); err != nil {
			t.Fatal(err)
		}
		if math.Abs(float64(out[0]-tc.want)) > 1e-6 {
			t.Errorf("%s default_left=%s x=%v: got %v, want %v", tc.objective, tc.defLeft, tc.x, out[0], tc.want)
		}
	}
}

func TestParseModelErrors(t *testing.T) {
	good := stump("reg:squarederror", "0")
	tests := []struct {
		name, from, to string
		want           error
		msg            string
	}{
		{"not json", good, "{", ErrModel, "unexpected end"},
		{"no learner", good, `{"version":[1]}`, ErrModel, "no \"learner\""},
		{"multiclass", `"num_class":"0"`, `"num_class":"3"`, ErrUnsupported, "3 classes"},
		{"multitarget", `"num_target":"1"`, `"num_target":"2"`, ErrUnsupported, "2 targets"},
		{"bad num_feature", `"num_feature":"1"`, `"num_feature":"x"`, ErrModel, "not an integer"},
		{"zero features", `"num_feature":"1"`, `"num_feature":"0"`, ErrModel, "num_feature"},
		{"names mismatch", `["a"]`, `["a","b"]`, ErrModel, "2 feature_names"},
		{"categorical type", `["float"]`, `["c"]`, ErrUnsupported, "categorical"},
		{"bad base", `"5E-1"`, `"abc"`, ErrModel, "base_score"},
		{"logistic base", `"reg:squarederror"`, `"binary:logistic"`, nil, ""},
		{"logistic base 1", `"5E-1","num_class"`, `"1","num_class"`, nil, ""},
		{"unknown objective", `"reg:squarederror"`, `"multi:softprob"`, ErrUnsupported, "objective"},
		{"gblinear", `"name":"gbtree"`, `"name":"gblinear"`, ErrUnsupported, "gblinear"},
		{"no trees", `"trees":[{`, `"trees":[],"x":[{`, ErrModel, ""},
		{"short arrays", `"split_indices":[0,0,0]`, `"split_indices":[0,0]`, ErrModel, "differ in length"},
		{"child out of range", `"left_children":[1,-1,-1]`, `"left_children":[7,-1,-1]`, ErrModel, "child 7"},
		{"cycle", `"left_children":[1,-1,-1]`, `"left_children":[0,-1,-1]`, ErrModel, "reached twice"},
		{"one child", `"right_children":[2,-1,-1]`, `"right_children":[2,1,-1]`, ErrModel, ""},
		{"feature range", `"split_indices":[0,0,0]`, `"split_indices":[4,0,0]`, ErrModel, "feature 4"},
		{"categorical split", `"split_type":[0,0,0]`, `"split_type":[1,0,0]`, ErrUnsupported, "categorical"},
		{"bad default_left", `"default_left":[0,`, `"default_left":[2,`, ErrModel, "default_left"},
		{"multi-output group", `"tree_info":[0]`, `"tree_info":[1]`, ErrUnsupported, "group 1"},
		{"leaf overflow", `[0.5,-1,2]`, `[0.5,-1,1e39]`, ErrModel, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := good
			if tc.from == good {
				src = tc.to
			} else {
				if !strings.Contains(src, tc.from) {
					t.Fatalf("test bug: %q not in the model", tc.from)
				}
				src = strings.Replace(src, tc.from, tc.to, 1)
			}
			if tc.name == "logistic base 1" {
				src = strings.Replace(src, `"reg:squarederror"`, `"binary:logistic"`, 1)
				tc.want, tc.msg = ErrModel, "(0, 1)"
			}
			_, err := ParseModel([]byte(src))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %q does not say %q", err, tc.msg)
			}
		})
	}
}

func TestDecodeParams(t *testing.T) {
	model := stump("reg:squarederror", "0")
	str, _ := json.Marshal(model)
	b64 := base64.StdEncoding.EncodeToString([]byte(model))
	ok := func(params string) {
		t.Helper()
		r, err := New([]byte(params))
		if err != nil {
			t.Fatalf("%.60s: %v", params, err)
		}
		out := []float32{0, 0}
		if err := r.Rank([]float32{1, 2, 0, 0}, out); err != nil || out[0] != 2.5 {
			t.Fatalf("%.60s: got %v %v", params, out, err)
		}
	}
	ok(`{"model":` + model + `,"features":["a","b"]}`)
	ok(`{"model":` + string(str) + `,"features":["a","b"],"attributes":[]}`)
	ok(`{"model_b64":"` + b64 + `","features":["a","b"],"output":"margin"}`)
	bad := []struct{ params, msg string }{
		{`{"features":["a"]}`, "no model"},
		{`{"model":null,"features":["a"]}`, "no model"},
		{`{"model":` + model + `,"model_b64":"` + b64 + `"}`, "both"},
		{`{"model_b64":"***"}`, "model_b64"},
		{`{"model":` + model + `,"features":["a"],"weights":{}}`, "unknown field"},
		{`{"model":` + model + `,"output":"prob"}`, "output"},
		{`{"model":` + model + `,"features":["b"]}`, `needs feature "a"`},
		{`{"model":"{","features":["a"]}`, "invalid model"},
		{`[]`, "invalid params"},
		{`{"model":` + model + `} {}`, "trailing"},
	}
	for _, tc := range bad {
		_, err := New([]byte(tc.params))
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%.70s: got %v, want an error saying %q", tc.params, err, tc.msg)
		}
	}
}

func TestBindByOrder(t *testing.T) {
	_, data := loadFixture(t, "squarederror")
	m, err := ParseModel(data)
	if err != nil {
		t.Fatal(err)
	}
	if m.FeatureNames != nil {
		t.Fatal("fixture should have no feature names")
	}
	if _, err := m.Bind([]string{"a", "b"}, false); !errors.Is(err, ErrParams) || !strings.Contains(err.Error(), "at least 8") {
		t.Fatalf("got %v", err)
	}
}

func TestRankInputSize(t *testing.T) {
	m, err := ParseModel([]byte(stump("reg:squarederror", "0")))
	if err != nil {
		t.Fatal(err)
	}
	r, err := m.Bind([]string{"x", "a"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Rank(make([]float32, 3), make([]float32, 2)); !errors.Is(err, ErrInput) {
		t.Fatalf("got %v, want ErrInput", err)
	}
	if err := r.Rank(nil, nil); err != nil {
		t.Fatalf("no candidates: %v", err)
	}
	// Column "a" is the second column: candidate i reads feat[2+i].
	out := make([]float32, 2)
	if err := r.Clone().Rank([]float32{9, 9, 0.1, 0.9}, out); err != nil || out[0] != -0.5 || out[1] != 2.5 {
		t.Fatalf("got %v %v", out, err)
	}
}
