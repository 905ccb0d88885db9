// Command merch is the Go build of the rules/merch plugin: package merch (the parent
// directory) behind the Go guest SDK, resolving brands and ids through podium.lookup. See
// ../README.md for params and the build command.
package main

import (
	"unsafe"

	"github.com/podium-rank/podium/plugins/rules/merch"
	"github.com/podium-rank/podium/sdk"
	"github.com/podium-rank/podium/sdk/abi"
)

// Set once by init; a guest runs one call at a time.
var (
	rules *merch.Rules
	nattr int
)

func main() {}

func init() {
	sdk.Init(setup)
	sdk.Rules(apply)
}

func setup(p *sdk.Params) error {
	lookup := func(space, value string) int32 {
		if space == abi.LookupIDSpace {
			id, ok := p.ItemID(value)
			if !ok || id > 1<<31-1 {
				return -1
			}
			return int32(id)
		}
		code, _ := p.AttrCode(space, value)
		return code
	}
	r, err := merch.New(p.Raw, lookup)
	if err != nil {
		return err
	}
	for _, w := range r.Warnings() {
		sdk.Log(abi.LogWarn, "rules/merch: "+w)
	}
	rules, nattr = r, len(p.Attributes)
	return nil
}

func apply(_ *sdk.Request, c *sdk.Candidates, f *sdk.Features, out *sdk.RulesOutput) error {
	// The ABI's keep bytes are 0 or 1, which is what Go stores for a bool.
	keep := unsafe.Slice((*uint8)(unsafe.Pointer(unsafe.SliceData(out.Keep))), len(out.Keep))
	return rules.Apply(merch.Input{IDs: c.IDs, Features: f.Matrix(), Attributes: attrMatrix(c, nattr), Scores: c.Scores},
		merch.Output{Keep: keep, Scores: out.Scores, Pin: out.Pin, Prefilled: true})
}

// attrMatrix returns the whole column-major attribute matrix: the SDK hands out columns,
// which the ABI lays out one after the other in the block.
func attrMatrix(c *sdk.Candidates, nattr int) []int32 {
	if nattr == 0 || c.N == 0 {
		return nil
	}
	return unsafe.Slice(unsafe.SliceData(c.AttrCol(0)), nattr*c.N)
}
