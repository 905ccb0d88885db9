package plugin_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/podium-rank/podium/engine/plugin"
	"github.com/podium-rank/podium/engine/plugin/internal/wasmtest"
)

// The lifecycle of a stage plugin: load (validate and compile), start with params, call,
// drain and close.
func Example() {
	ctx := context.Background()
	wasm, err := wasmtest.BuildErr("plugins/rank/linear/c", "") // or os.ReadFile("plugins/rank/linear/c.wasm")
	if err != nil {
		log.Fatal(err)
	}
	rt, err := plugin.NewRuntime(ctx, plugin.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close(ctx)
	mod, err := rt.Load(ctx, wasm)
	if err != nil {
		log.Fatal(err) // a bad manifest, export or ABI version is reported here
	}
	defer mod.Close(ctx)
	p, err := mod.Start(ctx, plugin.PluginConfig{
		Params: []byte(`{"features":["retrieval_score","popularity"],"weights":{"retrieval_score":1,"popularity":0.5}}`),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close(ctx)

	// Three candidates; the feature matrix is column-major in p.Features() order.
	in := &plugin.Input{
		K:        3,
		IDs:      []uint32{7, 8, 9},
		Features: []float32{0.9, 0.5, 0.1 /* retrieval_score */, 0, 1, 4 /* popularity */},
	}
	var out plugin.Output
	err = p.Call(ctx, in, &out)
	var fault *plugin.FaultError
	if errors.As(err, &fault) {
		log.Fatalf("stage falls back: %v", fault) // trap, timeout, bad output...
	}
	fmt.Println(p.Name(), p.Features(), out.Scores)
	// Output: rank/linear [retrieval_score popularity] [0.9 1 2.1]
}
