// Command two-tower is the Go build of the rank/two-tower plugin: package twotower (the
// parent directory) behind the Go guest SDK, with the host's dot and cosine kernels. See
// ../README.md for params and the build command.
package main

import (
	twotower "github.com/podium-rank/podium/plugins/rank/two-tower"
	"github.com/podium-rank/podium/sdk"
)

// ranker is set once by init; a guest runs one call at a time.
var ranker *twotower.Ranker

func main() {}

func init() {
	sdk.Init(setup)
	sdk.Rank(rank)
}

func setup(p *sdk.Params) error {
	r, err := twotower.New(p.Raw, twotower.Kernels{Dot: sdk.Dot, Cosine: sdk.Cosine})
	if err != nil {
		return err
	}
	ranker = r
	return nil
}

func rank(req *sdk.Request, c *sdk.Candidates, f *sdk.Features, scores []float32) error {
	return ranker.Rank(twotower.Input{Query: req.Query(), Embeddings: c.Embeddings(), Features: f.Matrix(),
		Scores: c.Scores}, scores)
}
