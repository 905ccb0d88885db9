package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/podium-rank/podium/engine/plugin"
)

// SmokeModule starts mod with params (one instance), calls it once on a synthetic batch of
// n candidates (Smoke) and closes it. It returns how long starting and calling took. The
// error says what failed: params, init, or the call (a *plugin.FaultError inside).
func SmokeModule(ctx context.Context, mod *plugin.Module, params json.RawMessage, n int) (time.Duration, error) {
	t0 := time.Now()
	p, err := mod.Start(ctx, plugin.PluginConfig{Params: params, Instances: 1, Timeout: time.Second})
	if err != nil {
		return 0, fmt.Errorf("cannot start plugin %s with its default params: %w", mod.Name(), err)
	}
	defer p.Close(ctx)
	if err := Smoke(ctx, p, n); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

// Smoke calls p once on a synthetic batch of n candidates (SyntheticInput) and fails if
// the call does, naming the fault: a plugin that traps, times out or writes bad outputs
// on ordinary input never becomes active.
func Smoke(ctx context.Context, p *plugin.Plugin, n int) error {
	var out plugin.Output
	if err := p.Call(ctx, SyntheticInput(p, n), &out); err != nil {
		return fmt.Errorf("smoke call on %d synthetic candidates failed: %w", n, err)
	}
	return nil
}

// SyntheticInput returns an Input of n candidates that fits p's needs: every feature
// finite (deterministic values in [0, 1)), decreasing scores, attribute codes 0..3, string
// ids, 16-dimensional embeddings when asked, and a context with a user, a session and an
// hour.
func SyntheticInput(p *plugin.Plugin, n int) *plugin.Input {
	in := &plugin.Input{
		K:       min(10, n),
		Context: []plugin.KV{plugin.Str("user_id", "smoke-user"), plugin.Str("session_id", "smoke-session"), plugin.Num("hour", 12)},
		IDs:     make([]uint32, n),
		Scores:  make([]float32, n),
	}
	x := uint64(0x9e3779b97f4a7c15)
	rnd := func() float32 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		return float32(x>>40) / float32(1<<24)
	}
	for i := range n {
		in.IDs[i] = uint32(i)
		in.Scores[i] = 1 - float32(i)/float32(n)
	}
	in.Features = make([]float32, len(p.Features())*n)
	for i := range in.Features {
		in.Features[i] = rnd()
	}
	in.Attrs = make([]int32, len(p.Attributes())*n)
	for i := range in.Attrs {
		in.Attrs[i] = int32(i % 4)
	}
	needs := p.Needs()
	if needs.IDs {
		in.StringIDs = make([]string, n)
		for i := range in.StringIDs {
			in.StringIDs[i] = fmt.Sprintf("smoke-%d", i)
		}
	}
	const dim = 16
	if needs.ItemEmbedding {
		in.ItemEmb = make([]float32, n*dim)
		for i := range in.ItemEmb {
			in.ItemEmb[i] = rnd() - 0.5
		}
	}
	if needs.QueryEmbedding {
		in.QueryEmb = make([]float32, dim)
		for i := range in.QueryEmb {
			in.QueryEmb[i] = rnd() - 0.5
		}
	}
	return in
}
