package gbdt_test

import (
	"fmt"
	"math"

	"github.com/podium-rank/podium/plugins/rank/gbdt"
)

// A one-tree model as XGBoost writes it: price < 20 scores +1, else -1 (a missing price goes
// left), base_score 0.5, binary:logistic.
const model = `{"learner":{"feature_names":["price"],"feature_types":["float"],
 "learner_model_param":{"base_score":"5E-1","num_class":"0","num_feature":"1","num_target":"1"},
 "objective":{"name":"binary:logistic"},
 "gradient_booster":{"name":"gbtree","model":{"tree_info":[0],"trees":[{
  "left_children":[1,-1,-1],"right_children":[2,-1,-1],"split_indices":[0,0,0],
  "split_conditions":[20,1,-1],"default_left":[1,0,0]}]}}}}`

func Example() {
	r, err := gbdt.New([]byte(`{"model":` + model + `,"features":["rating","price"]}`))
	if err != nil {
		panic(err)
	}
	// Three candidates, column-major: ratings, then prices (the third price is missing).
	nan := float32(math.NaN())
	feat := []float32{4.5, 3, 5, 10, 30, nan}
	out := make([]float32, 3)
	if err := r.Rank(feat, out); err != nil {
		panic(err)
	}
	fmt.Printf("%.4f\n", out)
	// Output: [0.7311 0.2689 0.7311]
}
