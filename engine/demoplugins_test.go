package engine

import (
	"path/filepath"
	"testing"
)

// TestDemoPipelines loads the demo pipeline (`engine --demo`) and its C twin, building their
// plugins from source, and ranks through them: three stages, none falling back.
func TestDemoPipelines(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Wasm guests")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{DemoPipeline, "plugins/demo-c.pipeline.json"} {
		t.Run(filepath.Base(file), func(t *testing.T) {
			path := filepath.Join(root, file)
			if err := BuildPipelinePlugins(root, path); err != nil {
				t.Fatal(err)
			}
			e := smallEngine(t)
			defer e.Close()
			if err := e.LoadPipelineFile(path); err != nil {
				t.Fatal(err)
			}
			for _, u := range []string{"u1", "u2", "nobody"} {
				r, err := e.Rank(&RankRequest{UserID: u, K: 20})
				if err != nil {
					t.Fatal(err)
				}
				if len(r.Result.Stages) != 3 || r.Result.FellBack || len(r.List.IDs) != 20 {
					t.Fatalf("%s: stages %+v, %d items", u, r.Result.Stages, len(r.List.IDs))
				}
				e.Release(r)
			}
		})
	}
}
