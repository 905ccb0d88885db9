// Command gbdt is the Go build of the rank/gbdt plugin: package gbdt (the parent
// directory) behind the Go guest SDK. See ../README.md for params and the build command.
package main

import (
	"github.com/podium-rank/podium/plugins/rank/gbdt"
	"github.com/podium-rank/podium/sdk"
)

// ranker is set once by init; a guest runs one call at a time.
var ranker *gbdt.Ranker

func main() {}

func init() {
	sdk.Init(setup)
	sdk.Rank(rank)
}

func setup(p *sdk.Params) error {
	r, err := gbdt.New(p.Raw)
	if err != nil {
		return err
	}
	ranker = r
	return nil
}

func rank(_ *sdk.Request, _ *sdk.Candidates, f *sdk.Features, scores []float32) error {
	return ranker.Rank(f.Matrix(), scores)
}
