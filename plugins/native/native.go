// Package native runs Podium's reference plugins as native Go, behind the same
// stages.Callee interface as their Wasm builds. It is the baseline Wasm is measured against
// ("the same logic written in native Go") and the proof that both give the same ranking:
// each twin calls the very package its Wasm guest is compiled from, with the same params.
package native

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/podium-rank/podium/engine/plugin"
	"github.com/podium-rank/podium/plugins/diversity/mmr"
	"github.com/podium-rank/podium/plugins/rank/gbdt"
	twotower "github.com/podium-rank/podium/plugins/rank/two-tower"
	"github.com/podium-rank/podium/plugins/rules/merch"
	"github.com/podium-rank/podium/sdk/abi"
)

// Lookup resolves a string to the code the host gives plugins (see plugin.Resolver).
type Lookup func(space, value string) int32

// Twin is a native reference plugin. It implements stages.Callee and is goroutine-safe:
// plugins with scratch state are cloned per concurrent call from a pool.
type Twin struct {
	m          abi.Manifest
	features   []string
	attributes []string
	pool       sync.Pool
	call       func(w any, in *plugin.Input, out *plugin.Output) error
}

// Name implements stages.Callee.
func (t *Twin) Name() string { return t.m.Name }

// Version implements stages.Callee: "native".
func (t *Twin) Version() string { return "native" }

// Kind implements stages.Callee.
func (t *Twin) Kind() abi.Kind { return t.m.Kind }

// Features implements stages.Callee.
func (t *Twin) Features() []string { return t.features }

// Attributes implements stages.Callee.
func (t *Twin) Attributes() []string { return t.attributes }

// Needs implements stages.Callee.
func (t *Twin) Needs() abi.Needs { return t.m.Needs }

// Call implements stages.Callee.
func (t *Twin) Call(_ context.Context, in *plugin.Input, out *plugin.Output) error {
	w := t.pool.Get()
	defer t.pool.Put(w)
	return t.call(w, in, out)
}

// Load builds the native twin of the reference plugin whose directory (holding its
// manifest.json) is dir, started with stage params as the host would start it.
func Load(dir string, params json.RawMessage, lookup Lookup) (*Twin, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, fmt.Errorf("cannot read manifest: %w", err)
	}
	m, err := abi.ParseManifest(raw)
	if err != nil {
		return nil, err
	}
	merged, features, attributes, err := plugin.MergeParams(*m, params)
	if err != nil {
		return nil, err
	}
	t := &Twin{m: *m, features: features, attributes: attributes}
	switch m.Name {
	case "rank/linear":
		err = t.linear(merged)
	case "rank/gbdt":
		err = t.gbdt(merged)
	case "rank/two-tower":
		err = t.twoTower(merged)
	case "rules/merch":
		err = t.merch(merged, lookup)
	case "diversity/mmr":
		err = t.mmr(merged)
	default:
		err = fmt.Errorf("native: no native twin of %q", m.Name)
	}
	if err != nil {
		return nil, err
	}
	return t, nil
}

func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// linear mirrors plugins/rank/linear/go/main.go, with the host's kernels.
func (t *Twin) linear(params []byte) error {
	var cfg struct {
		Weights     map[string]float32 `json:"weights"`
		Bias        float32            `json:"bias"`
		InputWeight float32            `json:"input_weight"`
		Missing     float32            `json:"missing"`
		Link        string             `json:"link"`
		Kernels     bool               `json:"kernels"`
		Features    []string           `json:"features"`
		Attributes  []string           `json:"attributes"`
	}
	if err := json.Unmarshal(params, &cfg); err != nil {
		return fmt.Errorf("rank/linear params: %v", err)
	}
	if cfg.Link != "identity" && cfg.Link != "logistic" {
		return fmt.Errorf("rank/linear: link %q: want identity or logistic", cfg.Link)
	}
	w := make([]float32, len(t.features))
	for name, wt := range cfg.Weights {
		found := false
		for j, f := range t.features {
			if f == name {
				w[j], found = wt, true
			}
		}
		if !found {
			return fmt.Errorf("rank/linear: weight for feature %q, which is not in features %v", name, t.features)
		}
	}
	t.pool.New = func() any { return nil }
	t.call = func(_ any, in *plugin.Input, out *plugin.Output) error {
		n := len(in.IDs)
		out.Scores = resize(out.Scores, n)
		scores := out.Scores
		plugin.WSum(w, in.Features, scores)
		for i, s := range scores {
			prev := float32(0)
			if len(in.Scores) > 0 {
				prev = in.Scores[i]
			}
			s += cfg.Bias + cfg.InputWeight*prev
			if s != s {
				s = cfg.Bias + cfg.InputWeight*prev
				for j, wj := range w {
					x := in.Features[j*n+i]
					if x != x {
						x = cfg.Missing
					}
					s += wj * x
				}
			}
			scores[i] = s
		}
		if cfg.Link == "logistic" {
			plugin.Sigmoid(scores)
		}
		return nil
	}
	return nil
}

func (t *Twin) gbdt(params []byte) error {
	r, err := gbdt.New(params)
	if err != nil {
		return err
	}
	t.pool.New = func() any { return r.Clone() }
	t.call = func(w any, in *plugin.Input, out *plugin.Output) error {
		out.Scores = resize(out.Scores, len(in.IDs))
		return w.(*gbdt.Ranker).Rank(in.Features, out.Scores)
	}
	return nil
}

func (t *Twin) twoTower(params []byte) error {
	r, err := twotower.New(params, twotower.NativeKernels)
	if err != nil {
		return err
	}
	t.pool.New = func() any { return nil }
	t.call = func(_ any, in *plugin.Input, out *plugin.Output) error {
		out.Scores = resize(out.Scores, len(in.IDs))
		return r.Rank(twotower.Input{Query: in.QueryEmb, Embeddings: in.ItemEmb, Features: in.Features, Scores: in.Scores}, out.Scores)
	}
	return nil
}

type merchWorker struct {
	r    *merch.Rules
	keep []uint8
}

func (t *Twin) merch(params []byte, lookup Lookup) error {
	r, err := merch.New(params, merch.Lookup(lookup))
	if err != nil {
		return err
	}
	t.pool.New = func() any { return &merchWorker{r: r.Clone()} }
	t.call = func(w any, in *plugin.Input, out *plugin.Output) error {
		mw := w.(*merchWorker)
		n := len(in.IDs)
		mw.keep = resize(mw.keep, n)
		out.Scores, out.Pin, out.Keep = resize(out.Scores, n), resize(out.Pin, n), resize(out.Keep, n)
		err := mw.r.Apply(merch.Input{IDs: in.IDs, Features: in.Features, Attributes: in.Attrs, Scores: in.Scores},
			merch.Output{Keep: mw.keep, Scores: out.Scores, Pin: out.Pin})
		for i, k := range mw.keep {
			out.Keep[i] = k != 0
		}
		return err
	}
	return nil
}

func (t *Twin) mmr(params []byte) error {
	d, err := mmr.New(params, mmr.NativeKernels)
	if err != nil {
		return err
	}
	t.pool.New = func() any { return d.Clone() }
	t.call = func(w any, in *plugin.Input, out *plugin.Output) error {
		n := len(in.IDs)
		dim := 0
		if n > 0 {
			dim = len(in.ItemEmb) / n
		}
		out.Order = resize(out.Order, n)
		m, err := w.(*mmr.Diversifier).Order(mmr.Input{Embeddings: in.ItemEmb, Dim: dim, Attributes: in.Attrs, Scores: in.Scores}, in.K, out.Order)
		out.Order = out.Order[:m]
		return err
	}
	return nil
}
