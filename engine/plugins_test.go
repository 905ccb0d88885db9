package engine

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/podium-rank/podium/engine/pipeline"
)

// buildWasm builds the guest in src (relative to the repository root) with the repo's
// build script into dir/name.wasm.
func buildWasm(t *testing.T, src, dir, name string) string {
	t.Helper()
	root, _ := filepath.Abs("..")
	out := filepath.Join(dir, name+".wasm")
	cmd := exec.Command(filepath.Join(root, "scripts", "build-wasm.sh"), src, out)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("build %s: %v\n%s", src, err, stderr.Bytes())
	}
	return out
}

// TestPluginPipeline runs rank -> rules -> diversity as real Wasm plugins through the
// engine, then makes each misbehave and checks the stage falls back while serving goes on.
func TestPluginPipeline(t *testing.T) {
	dir := t.TempDir()
	buildWasm(t, "engine/plugin/testdata/hostile", dir, "rank")
	buildWasm(t, "engine/plugin/testdata/hostile-rules", dir, "rules")
	buildWasm(t, "engine/plugin/testdata/hostile-div", dir, "div")
	cfg := `{"stages":[
	  {"name":"rank","kind":"rank","plugin":"rank.wasm","params":{"features":["price","popularity"]},"deadline":"50ms","cut":100},
	  {"name":"rules","kind":"rules","plugin":"rules.wasm","deadline":"50ms"},
	  {"name":"diversity","kind":"diversity","plugin":"div.wasm","deadline":"50ms","fallback":"skip"}]}`
	path := filepath.Join(dir, "pipeline.json")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	e := smallEngine(t)
	defer e.Close()
	if err := e.LoadPipelineFile(path); err != nil {
		t.Fatal(err)
	}
	rank := func(behave string) *Ranking {
		t.Helper()
		req := RankRequest{UserID: "u3", K: 10}
		if behave != "" {
			req.Context = []pipeline.ContextValue{{Key: "behave", Str: behave}}
		}
		r, err := e.Rank(&req)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := rank("")
	if r.Result.FellBack || len(r.Result.Stages) != 3 || len(r.List.IDs) != 10 {
		t.Fatalf("healthy run: %+v, %d items", r.Result, len(r.List.IDs))
	}
	for _, s := range r.Result.Stages {
		if s.FellBack || len(s.Version) != 12 || s.Plugin == "" {
			t.Fatalf("stage report %+v", s)
		}
	}
	// The rules plugin drops odd dense ids; the host guarantees hold after every stage.
	for _, id := range r.List.IDs {
		if id%2 == 1 {
			t.Fatalf("rules stage did not drop odd id %d: %v", id, r.List.IDs)
		}
	}
	e.Release(r)
	for _, c := range []struct {
		behave string
		stage  int
	}{{"trap", 0}, {"spin", 0}, {"oob", 0}, {"nan", 0}, {"keep", 1}, {"pin", 1}, {"range", 2}, {"dup", 2}} {
		r := rank(c.behave)
		if !r.Result.FellBack || len(r.List.IDs) == 0 {
			t.Fatalf("behave=%s: %+v", c.behave, r.Result)
		}
		fell := []string{}
		for _, s := range r.Result.Stages {
			if s.FellBack {
				fell = append(fell, s.Name)
			}
		}
		if len(fell) == 0 || fell[0] != r.Result.Stages[c.stage].Name {
			t.Fatalf("behave=%s: stages that fell back %v, want %s first (%+v)", c.behave, fell, r.Result.Stages[c.stage].Name, r.Result.Stages)
		}
		e.Release(r)
		// Serving goes on: the next healthy request does not fall back.
		if h := rank(""); h.Result.FellBack {
			t.Fatalf("after behave=%s the next request fell back: %+v", c.behave, h.Result.Stages)
		}
	}
}

func TestPipelineConfigErrors(t *testing.T) {
	e := smallEngine(t)
	defer e.Close()
	dir := t.TempDir()
	rules := buildWasm(t, "engine/plugin/testdata/hostile-rules", dir, "rules")
	for _, c := range []struct{ cfg, want string }{
		{`{"stages":[{"name":"rank","kind":"rank","plugin":"missing.wasm"}]}`, "cannot read plugin"},
		{`{"stages":[{"name":"rank","kind":"rank","plugin":"` + rules + `"}]}`, "is a rules plugin, the stage is rank"},
		{`{"stages":[{"name":"rank","kind":"rank","plugin":"native:nope"}]}`, "unknown native stage"},
		{`{"stages":[{"name":"rank","kind":"rank","plugin":"native:linear","params":{"weights":{"price":1},"x":1}}]}`, "unknown field"},
		{`{"stages":[{"name":"rank","kind":"rank","plugin":"native:linear","files":{"w":"nope.json"}}]}`, "cannot read file"},
	} {
		path := filepath.Join(dir, "p.json")
		os.WriteFile(path, []byte(c.cfg), 0o644)
		before := e.Pipeline()
		err := e.LoadPipelineFile(path)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q", c.cfg, err, c.want)
		}
		if e.Pipeline() != before {
			t.Errorf("%s: a failed load changed the live pipeline", c.cfg)
		}
	}
	path := filepath.Join(dir, "ok.json")
	os.WriteFile(path, []byte(`{"stages":[{"name":"rank","kind":"rank","plugin":"native:linear","params":{"weights":{"retrieval_score":1,"popularity":0.5}}}]}`), 0o644)
	if err := e.LoadPipelineFile(path); err != nil {
		t.Fatal(err)
	}
	r, _ := e.Rank(&RankRequest{K: 5})
	if r.Result.Stages[0].Plugin != "native/linear" || len(r.List.IDs) != 5 {
		t.Fatalf("native linear: %+v", r.Result)
	}
}
