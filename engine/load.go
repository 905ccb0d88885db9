package engine

import (
	"fmt"
	"github.com/podium-rank/podium/engine/catalog"
	"os"

	"github.com/podium-rank/podium/engine/demo"
)

// LoadDemo generates the demo data set of cfg (see demo.DefaultConfig) and loads it. The
// engine's Dim must match cfg.Dim.
func (e *Engine) LoadDemo(cfg demo.Config) error {
	if cfg.Dim != e.cfg.Dim {
		return fmt.Errorf("engine: demo data has %d dimensions, the engine %d", cfg.Dim, e.cfg.Dim)
	}
	d := demo.Generate(cfg)
	if err := e.UpsertItems(d.Items); err != nil {
		return err
	}
	return e.UpsertUsers(d.Users)
}

// LoadFile loads NDJSON items (users if users is set) from a file and returns the report.
// A file with failed lines still loads its good lines; the caller decides whether the
// failures matter.
func (e *Engine) LoadFile(path string, users bool) (rep LoadReport, err error) {
	f, err := os.Open(path)
	if err != nil {
		return rep, fmt.Errorf("cannot open %s: %w", path, err)
	}
	defer f.Close()
	if users {
		rep, err = e.LoadUsers(f)
	} else {
		rep, err = e.LoadItems(f)
	}
	if err != nil {
		return rep, fmt.Errorf("cannot load %s: %w", path, err)
	}
	return rep, nil
}

// LoadReport is the per-line report of an NDJSON load.
type LoadReport = catalog.Report

// SniffDim returns the embedding length of the first line of an NDJSON items file that has
// an embedding, or 0 if none of its first 1000 lines has one.
func SniffDim(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("cannot open %s: %w", path, err)
	}
	defer f.Close()
	dim, n := 0, 0
	errStop := fmt.Errorf("stop")
	_, err = catalog.ReadItems(f, nil, func(it *catalog.Item) error {
		n++
		if len(it.Embedding) > 0 {
			dim = len(it.Embedding)
			return errStop
		}
		if n >= 1000 {
			return errStop
		}
		return nil
	})
	return dim, err
}
