package engine

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/podium-rank/podium/engine/pipeline"
)

// DemoPipeline is the pipeline `engine --demo` runs, relative to the repository root: the
// reference plugins rank/linear -> rules/merch -> diversity/mmr, built from source.
const DemoPipeline = "plugins/demo.pipeline.json"

// BuildPipelinePlugins builds, with the repository's scripts/build-wasm.sh, every plugin of
// the pipeline config at path whose source lies beside its .wasm path (plugins/x/y/go.wasm
// is built from plugins/x/y/go), so that a fresh checkout can run the demo without `make
// wasm`. root is the repository root. Builds are cached by the script, so a second run
// costs a hash per plugin.
func BuildPipelinePlugins(root, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read pipeline config: %w", err)
	}
	cfg, err := pipeline.ParseConfig(data)
	if err != nil {
		return err
	}
	script := filepath.Join(root, "scripts", "build-wasm.sh")
	for _, st := range cfg.Stages {
		if strings.HasPrefix(st.Plugin, "native:") {
			continue
		}
		out := st.Plugin
		if !filepath.IsAbs(out) {
			out = filepath.Join(filepath.Dir(path), out)
		}
		src := strings.TrimSuffix(out, ".wasm")
		if _, err := os.Stat(src); err != nil {
			continue // a prebuilt plugin without source here
		}
		cmd := exec.Command(script, src, out)
		cmd.Dir = root
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("cannot build %s: %v\n%s", src, err, stderr.Bytes())
		}
	}
	return nil
}
