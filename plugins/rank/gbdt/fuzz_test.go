package gbdt

import (
	"math"
	"testing"
)

// checkModel is the fuzz property: a model that parses binds and ranks hard inputs to
// finite scores.
func checkModel(t *testing.T, m *Model) {
	cols := m.FeatureNames
	if cols == nil {
		cols = make([]string, m.NumFeature)
		for i := range cols {
			cols[i] = string(rune('a' + i%26))
		}
	}
	colOf := make([]int32, m.NumFeature)
	for i := range colOf {
		colOf[i] = int32(i)
	}
	for _, margin := range []bool{false, true} {
		r, err := m.Bind(cols, margin)
		if err != nil {
			t.Fatalf("a parsed model does not bind to its own features: %v", err)
		}
		const n = 5
		out := make([]float32, n)
		if err := r.Rank(hardInputs(m, colOf, len(cols), n, 1), out); err != nil {
			t.Fatal(err)
		}
		for i, v := range out {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("candidate %d scored %v", i, v)
			}
		}
	}
}

func FuzzParseModel(f *testing.F) {
	for _, o := range []string{"reg:squarederror", "binary:logistic", "count:poisson"} {
		f.Add([]byte(stump(o, "1")))
	}
	// The fixture models are left out on purpose: the fuzzer minimises every new input it
	// finds interesting, which for a 40 KB model takes minutes.
	f.Add([]byte(dartStump()))
	f.Add([]byte(`{"learner":{}}`))
	f.Add([]byte(`{"learner":{"gradient_booster":{"name":"dart","gbtree":{}}}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseModel(data)
		if err != nil {
			if m != nil {
				t.Fatal("model and error")
			}
			return
		}
		if m.NumFeature <= 256 {
			checkModel(t, m)
		}
	})
}

func FuzzNew(f *testing.F) {
	model := stump("binary:logistic", "0")
	f.Add([]byte(`{"model":` + model + `,"features":["a","b"]}`))
	f.Add([]byte(`{"model":"` + "{}" + `","features":[]}`))
	f.Add([]byte(`{"model_b64":"e30=","output":"margin"}`))
	f.Add([]byte(`{"model":1}`))
	f.Fuzz(func(t *testing.T, params []byte) {
		r, err := New(params)
		if err != nil {
			return
		}
		n := 3
		feat := make([]float32, r.Columns()*n)
		for i := range feat {
			feat[i] = float32(i%5) - 1
		}
		out := make([]float32, n)
		if err := r.Rank(feat, out); err != nil {
			t.Fatal(err)
		}
		for _, v := range out {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("score %v", v)
			}
		}
	})
}
