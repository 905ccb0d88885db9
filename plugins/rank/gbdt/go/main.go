// Command gbdt is the Go build of the rank/gbdt plugin: package gbdt (the parent
// directory) behind the Go guest SDK. See ../README.md for params and the build command.
package main

import (
	"github.com/podium-rank/podium/plugins/rank/gbdt"
	"github.com/podium-rank/podium/sdk"
)

// Set once by init; a guest runs one call at a time.
var (
	ranker    *gbdt.Ranker // scores raw margins
	transform gbdt.Transform
)

func main() {}

func init() {
	sdk.Init(setup)
	sdk.Rank(rank)
}

func setup(p *sdk.Params) error {
	params, model, err := gbdt.DecodeParams(p.Raw)
	if err != nil {
		return err
	}
	m, err := gbdt.ParseModel(model)
	if err != nil {
		return err
	}
	if ranker, err = m.Bind(params.Features, true); err != nil {
		return err
	}
	transform = m.Transform
	if params.Output == "margin" {
		transform = gbdt.Identity
	}
	return nil
}

func rank(_ *sdk.Request, _ *sdk.Candidates, f *sdk.Features, scores []float32) error {
	if err := ranker.Rank(f.Matrix(), scores); err != nil {
		return err
	}
	switch transform {
	case gbdt.Sigmoid:
		// The host's kernel: native speed, and the very arithmetic of the native package
		// (Go's math.Exp is assembly on amd64 but pure Go in Wasm).
		sdk.Sigmoid(scores)
	case gbdt.Exp:
		transform.Apply(scores, scores)
	}
	return nil
}
