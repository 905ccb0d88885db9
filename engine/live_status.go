package engine

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/podium-rank/podium/engine/events"
	"github.com/podium-rank/podium/engine/registry"
	"github.com/podium-rank/podium/engine/registry/compare"
)

// StageStatus is one live stage as the admin API shows it: the registry's assignment and,
// per running variant, its statistics.
type StageStatus struct {
	registry.Stage
	// Variants lists what runs: the champion first, then the challengers.
	Variants []VariantStatus `json:"variants"`
}

// VariantStatus is one running variant of a stage.
type VariantStatus struct {
	// Variant is "champion" or the challenger's name.
	Variant string  `json:"variant"`
	Mode    string  `json:"mode,omitempty"`
	Share   float64 `json:"share,omitempty"`
	Version string  `json:"version"`
	Plugin  string  `json:"plugin"`
	// Instances is the number of live plugin instances (0 for a native stage).
	Instances int `json:"instances"`
	// Window summarises the runs of the last WindowSeconds; Total those since the variant
	// started.
	Window        compare.Summary `json:"window"`
	WindowSeconds float64         `json:"window_seconds"`
	Total         compare.Summary `json:"total"`
	// Canary holds the thresholds (with defaults) of a canaried split challenger.
	Canary *registry.Canary `json:"canary,omitempty"`
}

func variantStatus(v *variant, now time.Time) VariantStatus {
	w, all := v.win.Last(now), v.win.All()
	vs := VariantStatus{Variant: v.name, Mode: v.mode, Share: v.share, Version: v.version, Plugin: v.info.Plugin,
		Window: w.Summary(), WindowSeconds: v.win.Span().Seconds(), Total: all.Summary(), Canary: v.canary}
	if v.pl != nil {
		vs.Instances = v.pl.Stats().Instances
	}
	return vs
}

// status returns the status of the slot's current assignment.
func (lv *Live) status(s *slot) StageStatus {
	a := s.acquire()
	defer a.release()
	now := time.Now()
	st := StageStatus{Stage: a.st.Clone()}
	for _, v := range a.variants() {
		st.Variants = append(st.Variants, variantStatus(v, now))
	}
	return st
}

// Stages returns the live pipeline, in order.
func (lv *Live) Stages() []StageStatus {
	var out []StageStatus
	for _, s := range lv.tmpl.Load().slots {
		out = append(out, lv.status(s))
	}
	return out
}

// Stage returns the named stage's status.
func (lv *Live) Stage(name string) (StageStatus, error) {
	s := lv.findSlot(name)
	if s == nil {
		return StageStatus{}, fmt.Errorf("%w: no stage %q", registry.ErrNotFound, name)
	}
	return lv.status(s), nil
}

// PluginStatus is a stored plugin with where it is used.
type PluginStatus struct {
	registry.Plugin
	// UsedBy lists the roles the version has: "rank:champion", "rank:b (shadow)",
	// "rank:history".
	UsedBy []string `json:"used_by,omitempty"`
}

// Plugins returns the stored plugins, newest first, with where they are used.
func (lv *Live) Plugins() []PluginStatus {
	uses := lv.uses()
	var out []PluginStatus
	for _, p := range lv.reg.Plugins() {
		out = append(out, PluginStatus{Plugin: p, UsedBy: uses[p.Version]})
	}
	return out
}

// Plugin returns the plugin ref names (a version or a unique prefix).
func (lv *Live) Plugin(ref string) (PluginStatus, error) {
	p, err := lv.reg.Plugin(ref)
	if err != nil {
		return PluginStatus{}, err
	}
	return PluginStatus{Plugin: p, UsedBy: lv.uses()[p.Version]}, nil
}

func (lv *Live) uses() map[string][]string {
	out := map[string][]string{}
	for _, st := range lv.reg.Stages() {
		out[st.Champion.Version] = append(out[st.Champion.Version], st.Name+":champion")
		for _, c := range st.Challengers {
			out[c.Version] = append(out[c.Version], fmt.Sprintf("%s:%s (%s)", st.Name, c.Name, c.Mode))
		}
		for _, h := range st.History {
			out[h.Version] = append(out[h.Version], st.Name+":history")
		}
	}
	return out
}

// CompareStatus is GET /admin/compare/{stage}: how each challenger of a stage compares
// with the champion.
type CompareStatus struct {
	Stage    string        `json:"stage"`
	Champion VariantStatus `json:"champion"`
	// Challengers compares each challenger: shadows on the same requests (ranking overlap,
	// rank correlation, score delta, both latencies and fault rates), splits by their
	// own runs against the champion's over the window.
	Challengers []ChallengerComparison `json:"challengers"`
	// ShadowQueue is the state of the shared shadow queue.
	ShadowQueue ShadowQueueStatus `json:"shadow_queue"`
	// CTR is the click-through per request-level variant from events, when open.
	CTR []events.VariantStats `json:"ctr,omitempty"`
}

// ChallengerComparison compares one challenger with the champion.
type ChallengerComparison struct {
	VariantStatus
	// Shadow holds the paired statistics of a shadow challenger.
	Shadow *compare.PairStats `json:"shadow,omitempty"`
	// P99Ratio is the challenger's window p99 over the champion's (0 when either has no
	// runs).
	P99Ratio float64 `json:"p99_ratio"`
}

// ShadowQueueStatus describes the shadow queue.
type ShadowQueueStatus struct {
	Len     int `json:"len"`
	Cap     int `json:"cap"`
	Workers int `json:"workers"`
	// CPUShare is the share of one core the workers may use (LiveConfig.ShadowCPU), and
	// MinIdle the machine idle share they wait for (LiveConfig.ShadowMinIdle).
	CPUShare float64 `json:"cpu_share"`
	MinIdle  float64 `json:"min_idle"`
	Dropped  uint64  `json:"dropped"`
}

// Compare returns the comparison statistics of the named stage.
func (lv *Live) Compare(name string) (CompareStatus, error) {
	s := lv.findSlot(name)
	if s == nil {
		return CompareStatus{}, fmt.Errorf("%w: no stage %q", registry.ErrNotFound, name)
	}
	a := s.acquire()
	defer a.release()
	now := time.Now()
	cs := CompareStatus{Stage: name, Champion: variantStatus(a.champion, now), ShadowQueue: lv.ShadowQueue()}
	champP99 := cs.Champion.Window.P99US
	add := func(v *variant, pair *compare.Pair) {
		c := ChallengerComparison{VariantStatus: variantStatus(v, now)}
		if pair != nil {
			ps := pair.Stats()
			c.Shadow = &ps
		}
		if champP99 > 0 && c.Window.P99US > 0 {
			c.P99Ratio = c.Window.P99US / champP99
		}
		cs.Challengers = append(cs.Challengers, c)
	}
	for _, v := range a.splits {
		add(v, nil)
	}
	for i, v := range a.shadows {
		add(v, a.pairs[i])
	}
	if g := lv.e.Events(); g != nil {
		cs.CTR = g.State().VariantCTR(now)
	}
	return cs, nil
}

// ShadowQueue returns the state of the shadow queue.
func (lv *Live) ShadowQueue() ShadowQueueStatus {
	return ShadowQueueStatus{Len: len(lv.jobs), Cap: cap(lv.jobs), Workers: lv.cfg.ShadowWorkers, CPUShare: lv.cfg.ShadowCPU, MinIdle: lv.cfg.ShadowMinIdle, Dropped: lv.dropped.Load()}
}

// AppendMetrics appends the live operations' metrics in the Prometheus text format:
// per stage variant runs, faults, fallbacks and window latency quantiles; per shadow
// challenger sampled, dropped and compared requests and the mean comparison statistics;
// swaps and rollbacks.
func (lv *Live) AppendMetrics(b []byte) []byte {
	now := time.Now()
	type row struct {
		stage string
		v     *variant
		pair  *compare.Pair
	}
	var rows []row
	for _, s := range lv.tmpl.Load().slots {
		a := s.acquire()
		for _, v := range append([]*variant{a.champion}, a.splits...) {
			rows = append(rows, row{s.name, v, nil})
		}
		for i, v := range a.shadows {
			rows = append(rows, row{s.name, v, a.pairs[i]})
		}
		a.release()
	}
	labels := func(r row) string {
		return fmt.Sprintf(`stage=%q,variant=%q,version=%q`, r.stage, r.v.name, short(r.v.version))
	}
	type counter struct {
		name, help string
		get        func(t *compare.Totals) uint64
	}
	totals := make([]compare.Totals, len(rows))
	windows := make([]compare.Totals, len(rows))
	for i, r := range rows {
		totals[i], windows[i] = r.v.win.All(), r.v.win.Last(now)
	}
	for _, c := range []counter{
		{"podium_live_stage_runs_total", "stage runs per variant", func(t *compare.Totals) uint64 { return t.Runs }},
		{"podium_live_stage_faults_total", "stage runs where the plugin faulted", func(t *compare.Totals) uint64 { return t.Faults }},
		{"podium_live_stage_fallbacks_total", "stage runs that fell back", func(t *compare.Totals) uint64 { return t.Fallbacks }},
	} {
		b = fmt.Appendf(b, "# HELP %s %s.\n# TYPE %s counter\n", c.name, c.help, c.name)
		for i, r := range rows {
			b = fmt.Appendf(b, "%s{%s} %d\n", c.name, labels(r), c.get(&totals[i]))
		}
	}
	b = append(b, "# HELP podium_live_stage_latency_seconds Stage run latency per variant over its window.\n# TYPE podium_live_stage_latency_seconds gauge\n"...)
	for i, r := range rows {
		for _, q := range []float64{0.5, 0.99} {
			b = fmt.Appendf(b, "podium_live_stage_latency_seconds{%s,quantile=\"%g\"} %g\n", labels(r), q, windows[i].Latency.Quantile(q).Seconds())
		}
	}
	type gauge struct {
		name, typ string
		get       func(p *compare.PairStats) string
	}
	stats := make([]compare.PairStats, len(rows))
	for i, r := range rows {
		if r.pair != nil {
			stats[i] = r.pair.Stats()
		}
	}
	u := func(x uint64) string { return strconv.FormatUint(x, 10) }
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', 6, 64) }
	for _, g := range []gauge{
		{"podium_live_shadow_sampled_total", "counter", func(p *compare.PairStats) string { return u(p.Sampled) }},
		{"podium_live_shadow_dropped_total", "counter", func(p *compare.PairStats) string { return u(p.Dropped) }},
		{"podium_live_shadow_compared_total", "counter", func(p *compare.PairStats) string { return u(p.Compared) }},
		{"podium_live_shadow_overlap_at_k", "gauge", func(p *compare.PairStats) string { return f(p.OverlapAtK) }},
		{"podium_live_shadow_kendall_tau", "gauge", func(p *compare.PairStats) string { return f(p.KendallTau) }},
		{"podium_live_shadow_mean_abs_score_delta", "gauge", func(p *compare.PairStats) string { return f(p.MeanAbsScoreDelta) }},
	} {
		b = fmt.Appendf(b, "# TYPE %s %s\n", g.name, g.typ)
		for i, r := range rows {
			if r.pair != nil {
				b = fmt.Appendf(b, "%s{%s} %s\n", g.name, labels(r), g.get(&stats[i]))
			}
		}
	}
	b = fmt.Appendf(b, "# TYPE podium_live_shadow_queue_dropped_total counter\npodium_live_shadow_queue_dropped_total %d\n", lv.dropped.Load())
	b = fmt.Appendf(b, "# TYPE podium_live_shadow_queue_length gauge\npodium_live_shadow_queue_length %d\n", len(lv.jobs))
	b = fmt.Appendf(b, "# TYPE podium_live_swaps_total counter\npodium_live_swaps_total %d\n", lv.swaps.Load())
	b = fmt.Appendf(b, "# TYPE podium_live_rollbacks_total counter\npodium_live_rollbacks_total{cause=\"manual\"} %d\npodium_live_rollbacks_total{cause=\"canary\"} %d\n",
		lv.rollbacks.Load(), lv.canaryRB.Load())
	return b
}

// CheckCanaries judges every canaried split challenger at now and rolls back those that
// cross a threshold: the challenger is removed from its stage, the rollback logged and
// recorded in the registry's events (action canary_rollback, with the reason). It returns
// the rollbacks it made as "stage:challenger: reason". The background loop calls it every
// LiveConfig.CanaryInterval.
func (lv *Live) CheckCanaries(now time.Time) []string {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	if lv.closed {
		return nil
	}
	var out []string
	var ctr []events.VariantStats
	if g := lv.e.Events(); g != nil {
		ctr = g.State().VariantCTR(now)
	}
	for _, s := range lv.tmpl.Load().slots {
		a := s.cur.Load()
		for _, v := range a.splits {
			if v.canary == nil {
				continue
			}
			reason := judge(a, v, now, ctr)
			if reason == "" {
				continue
			}
			if err := lv.removeChallenger(context.Background(), s, v.name, registry.ActionCanaryRollback, reason); err != nil {
				lv.log.Error("engine: canary rollback failed", "stage", s.name, "challenger", v.name, "err", err)
				continue
			}
			lv.canaryRB.Add(1)
			lv.log.Warn("engine: canary rolled back a challenger", "stage", s.name, "challenger", v.name, "version", short(v.version), "reason", reason)
			out = append(out, s.name+":"+v.name+": "+reason)
		}
	}
	return out
}

// judge returns why v must be rolled back, or "".
func judge(a *assignment, v *variant, now time.Time, ctr []events.VariantStats) string {
	c := v.canary
	t := v.win.Last(now)
	if t.Runs < uint64(c.MinRequests) {
		return ""
	}
	runs := float64(t.Runs)
	span := time.Duration(c.Window)
	if r := float64(t.Faults) / runs; r > c.MaxErrorRate {
		return fmt.Sprintf("fault rate %.3f > %.3f over %d runs in %v", r, c.MaxErrorRate, t.Runs, span)
	}
	if r := float64(t.Fallbacks) / runs; r > c.MaxFallbackRate {
		return fmt.Sprintf("fallback rate %.3f > %.3f over %d runs in %v", r, c.MaxFallbackRate, t.Runs, span)
	}
	p99 := t.Latency.Quantile(0.99)
	if c.MaxP99 > 0 && p99 > time.Duration(c.MaxP99) {
		return fmt.Sprintf("p99 %v > %v over %d runs in %v", p99, time.Duration(c.MaxP99), t.Runs, span)
	}
	if c.MaxP99Ratio > 0 {
		ct := a.champion.win.Last(now)
		if cp := ct.Latency.Quantile(0.99); ct.Runs >= uint64(c.MinRequests) && cp > 0 && float64(p99) > c.MaxP99Ratio*float64(cp) {
			return fmt.Sprintf("p99 %v is %.2fx the champion's %v (limit %.2fx)", p99, float64(p99)/float64(cp), cp, c.MaxP99Ratio)
		}
	}
	if c.MaxCTRDrop > 0 && len(ctr) > 0 {
		var champ, chal events.VariantStats
		for _, s := range ctr {
			if s.Variant == ChampionVariant {
				champ = s
				continue
			}
			for _, l := range strings.Split(s.Variant, ",") {
				if l == v.label {
					chal.Requests += s.Requests
					chal.ItemsServed += s.ItemsServed
					chal.Impressions += s.Impressions
					chal.Clicks += s.Clicks
				}
			}
		}
		if chal.ItemsServed >= uint64(c.MinImpressions) && champ.ItemsServed > 0 {
			rate := func(s events.VariantStats, useImp bool) float64 {
				if useImp {
					return float64(s.Clicks) / float64(s.Impressions)
				}
				return float64(s.Clicks) / float64(s.ItemsServed)
			}
			useImp := champ.Impressions > 0 && chal.Impressions > 0
			cr, hr := rate(champ, useImp), rate(chal, useImp)
			if cr > 0 && 1-hr/cr > c.MaxCTRDrop {
				return fmt.Sprintf("click-through %.4f is %.0f%% below the champion's %.4f (limit %.0f%%)", hr, 100*(1-hr/cr), cr, 100*c.MaxCTRDrop)
			}
		}
	}
	return ""
}

// canaryLoop checks canaries every interval until Close.
func (lv *Live) canaryLoop(interval time.Duration) {
	defer close(lv.loopDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-lv.stop:
			return
		case now := <-t.C:
			lv.CheckCanaries(now)
		}
	}
}
