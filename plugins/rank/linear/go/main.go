// Command linear is the Go build of the rank/linear plugin: a weighted sum (or logistic)
// of named features. See ../README.md for params and the build command.
package main

import (
	"fmt"
	"math"

	"github.com/podium-rank/podium/sdk"
)

// config is the plugin's params (../manifest.json has the defaults).
type config struct {
	Weights     map[string]float32 `json:"weights"`
	Bias        float32            `json:"bias"`
	InputWeight float32            `json:"input_weight"`
	Missing     float32            `json:"missing"`
	Link        string             `json:"link"`
	Kernels     bool               `json:"kernels"`
}

var (
	cfg config
	w   []float32 // weight per feature column
)

func main() {}

func init() {
	sdk.Init(setup)
	sdk.Rank(rank)
}

func setup(p *sdk.Params) error {
	if err := p.Decode(&cfg); err != nil {
		return err
	}
	if cfg.Link != "identity" && cfg.Link != "logistic" {
		return fmt.Errorf("link %q: want identity or logistic", cfg.Link)
	}
	w = make([]float32, len(p.Features))
	for name, wt := range cfg.Weights {
		j := p.Feature(name)
		if j < 0 {
			return fmt.Errorf("weight for feature %q, which is not in features %v", name, p.Features)
		}
		w[j] = wt
	}
	return nil
}

func rank(_ *sdk.Request, c *sdk.Candidates, f *sdk.Features, scores []float32) error {
	if cfg.Kernels {
		sdk.WSum(w, f.Matrix(), scores)
	} else {
		clear(scores)
		for j, wj := range w {
			col := f.Col(j)
			for i := range scores {
				scores[i] += wj * col[i]
			}
		}
	}
	for i, s := range scores {
		s += cfg.Bias + cfg.InputWeight*c.Scores[i]
		if s != s { // a missing feature (NaN): recompute with the missing value
			s = cfg.Bias + cfg.InputWeight*c.Scores[i]
			for j, wj := range w {
				x := f.Col(j)[i]
				if x != x {
					x = cfg.Missing
				}
				s += wj * x
			}
		}
		scores[i] = s
	}
	if cfg.Link == "logistic" {
		if cfg.Kernels {
			sdk.Sigmoid(scores)
		} else {
			for i, s := range scores {
				scores[i] = float32(1 / (1 + math.Exp(-float64(s))))
			}
		}
	}
	return nil
}
