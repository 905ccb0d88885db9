// Command mmr is the Go build of the diversity/mmr plugin: package mmr (the parent
// directory) behind the Go guest SDK, with the host's dot kernel. See ../README.md for
// params and the build command.
package main

import (
	"unsafe"

	"github.com/podium-rank/podium/plugins/diversity/mmr"
	"github.com/podium-rank/podium/sdk"
)

// Set once by init; a guest runs one call at a time.
var (
	div   *mmr.Diversifier
	nattr int
)

func main() {}

func init() {
	sdk.Init(setup)
	sdk.Diversity(order)
}

func setup(p *sdk.Params) error {
	d, err := mmr.New(p.Raw, mmr.Kernels{Dot: sdk.Dot})
	if err != nil {
		return err
	}
	div, nattr = d, len(p.Attributes)
	return nil
}

func order(req *sdk.Request, c *sdk.Candidates, _ *sdk.Features, out []int32) (int, error) {
	return div.Order(mmr.Input{Embeddings: c.Embeddings(), Dim: c.Dim, Attributes: attrMatrix(c, nattr), Scores: c.Scores},
		req.K, out)
}

// attrMatrix returns the whole column-major attribute matrix: the SDK hands out columns,
// which the ABI lays out one after the other in the block.
func attrMatrix(c *sdk.Candidates, nattr int) []int32 {
	if nattr == 0 || c.N == 0 {
		return nil
	}
	return unsafe.Slice(unsafe.SliceData(c.AttrCol(0)), nattr*c.N)
}
