//go:build !race

package plugin

import (
	"context"
	"testing"
)

// TestCallDoesNotAllocate proves the stage call path allocation-free once the pool is
// warm and the Output reused.
func TestCallDoesNotAllocate(t *testing.T) {
	ctx := context.Background()
	for _, src := range []string{"hostile", "hostile-div", "hostile-rules"} {
		p := startTest(t, "engine/plugin/testdata/"+src, PluginConfig{Instances: 1})
		in := echoInput(200, Str("user", "u1"), Num("bias", 1))
		if src != "hostile" {
			in = &Input{K: 10, IDs: in.IDs, Scores: in.Scores, Context: in.Context}
		}
		var out Output
		if err := p.Call(ctx, in, &out); err != nil {
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(200, func() {
			if err := p.Call(ctx, in, &out); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per call", src, allocs)
		}
	}
}
