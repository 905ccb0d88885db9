// Package cli implements `engine plugin ...`, the operators' command line for live plugin
// operations: it talks to the admin API (engine/admin) through engine/admin/client.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/podium-rank/podium/engine"
	"github.com/podium-rank/podium/engine/admin/client"
	"github.com/podium-rank/podium/engine/plugin/plugincli"
	"github.com/podium-rank/podium/engine/registry"
)

const usage = `usage: engine plugin COMMAND [flags]

Live plugin operations, through the admin API:
  push FILE.wasm                       validate and store a plugin version
  ls                                   list stored versions and where they are used
  stages                               show the live pipeline with per-variant statistics
  activate STAGE VERSION [--params JSON]
                                       make VERSION the champion of STAGE
  rollback STAGE                       return STAGE to its previous champion
  shadow STAGE VERSION --share 0.1 [--name N] [--params JSON]
                                       run VERSION beside the champion on a share of requests,
                                       off the critical path, and compare
  split STAGE VERSION --share 0.05 [--name N] [--params JSON] [canary flags]
                                       serve VERSION to a share of users (sticky), with a
                                       canary that rolls it back automatically
  unchallenge STAGE NAME               remove a challenger
  compare STAGE                        champion vs challengers statistics
  events [-n 20]                       the operations log
  rm VERSION                           delete a version no stage uses

Offline (no engine needed; see engine/plugin/plugincli):
  validate FILE.wasm | test FILE.wasm ... | bench FILE.wasm ...

Common flags:
  --admin URL     admin API (default $PODIUM_ADMIN or http://127.0.0.1:8081)
  --token TOKEN   bearer token (default $PODIUM_ADMIN_TOKEN)
  --json          print the API's JSON answer
VERSION is a full sha256 or a unique prefix of at least 6 hex digits (as "ls" shows).
`

// Main runs `engine plugin` with args (args[0] is the command) and returns the exit code:
// 0 success, 1 failure, 2 usage error.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd := args[0]
	switch cmd {
	case "validate", "test", "bench":
		return plugincli.Main(args, stdout, stderr)
	}
	fs := flag.NewFlagSet("engine plugin", flag.ContinueOnError)
	fs.SetOutput(stderr)
	adminURL := fs.String("admin", envOr("PODIUM_ADMIN", "http://127.0.0.1:8081"), "admin API base URL")
	token := fs.String("token", os.Getenv("PODIUM_ADMIN_TOKEN"), "bearer token")
	asJSON := fs.Bool("json", false, "print the API's JSON answer")
	params := fs.String("params", "", "params of the plugin (a JSON object)")
	share := fs.Float64("share", 0, "share of requests (shadow) or users (split), in (0, 1]")
	name := fs.String("name", "", "challenger name (default c-<first 8 hex digits of the version>)")
	n := fs.Int("n", 20, "number of events")
	noCanary := fs.Bool("no-canary", false, "split without a canary")
	cWindow := fs.Duration("canary-window", time.Minute, "canary: sliding window")
	cMin := fs.Int("canary-min-requests", 100, "canary: runs needed before a verdict")
	cErr := fs.Float64("canary-max-error-rate", 0.05, "canary: largest acceptable fault rate")
	cFall := fs.Float64("canary-max-fallback-rate", 0.05, "canary: largest acceptable fallback rate")
	cP99 := fs.Duration("canary-max-p99", 0, "canary: largest acceptable p99 (0: not checked)")
	cRatio := fs.Float64("canary-max-p99-ratio", 0, "canary: largest acceptable p99 as a multiple of the champion's (0: not checked)")
	cCTR := fs.Float64("canary-max-ctr-drop", 0, "canary: largest acceptable relative click-through drop, e.g. 0.2 (0: not checked)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, pos = pos[0], pos[1:]
	who := "cli"
	if u, err := user.Current(); err == nil && u.Username != "" {
		who = u.Username
	}
	c := &client.Client{URL: *adminURL, Token: *token, Caller: who}
	ctx := context.Background()
	var raw json.RawMessage
	if *params != "" {
		raw = json.RawMessage(*params)
		if !json.Valid(raw) || !strings.HasPrefix(strings.TrimSpace(*params), "{") {
			fmt.Fprintln(stderr, "engine plugin: --params must be a JSON object")
			return 2
		}
	}
	need := func(k int, what string) bool {
		if len(pos) != k {
			fmt.Fprintf(stderr, "usage: engine plugin %s %s\n", cmd, what)
			return false
		}
		return true
	}
	out := &printer{w: stdout, json: *asJSON}
	var res any
	switch cmd {
	case "push":
		if !need(1, "FILE.wasm") {
			return 2
		}
		wasm, err := os.ReadFile(pos[0])
		if err != nil {
			fmt.Fprintln(stderr, "engine plugin:", err)
			return 1
		}
		r, err := c.Push(ctx, wasm)
		if err != nil {
			return fail(stderr, err)
		}
		res = r
		if !out.json {
			state := "stored"
			if r.Existed {
				state = "already stored"
			}
			fmt.Fprintf(stdout, "%s %s %s (%s, %d bytes, smoke call %dµs)\n", state, r.Name, r.Version, r.Kind, r.Size, r.Validation.SmokeUS)
		}
	case "ls":
		ps, err := c.Plugins(ctx)
		if err != nil {
			return fail(stderr, err)
		}
		res = map[string]any{"plugins": ps}
		if !out.json {
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tNAME\tKIND\tSIZE\tUPLOADED\tBY\tUSED BY")
			for _, p := range ps {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", p.Version[:12], p.Name, p.Kind, p.Size,
					p.UploadedAt.Local().Format("2006-01-02 15:04:05"), p.UploadedBy, strings.Join(p.UsedBy, ", "))
			}
			tw.Flush()
		}
	case "stages":
		sts, err := c.Stages(ctx)
		if err != nil {
			return fail(stderr, err)
		}
		res = map[string]any{"stages": sts}
		if !out.json {
			printStages(stdout, sts)
		}
	case "activate":
		if !need(2, "STAGE VERSION [--params JSON]") {
			return 2
		}
		st, err := c.Activate(ctx, pos[0], pos[1], raw)
		if err != nil {
			return fail(stderr, err)
		}
		res = st
		if !out.json {
			fmt.Fprintf(stdout, "stage %s: champion %s (revision %d)\n", st.Name, st.Champion.Version[:min(12, len(st.Champion.Version))], st.Revision)
		}
	case "rollback":
		if !need(1, "STAGE") {
			return 2
		}
		st, err := c.Rollback(ctx, pos[0])
		if err != nil {
			return fail(stderr, err)
		}
		res = st
		if !out.json {
			fmt.Fprintf(stdout, "stage %s: rolled back to %s (revision %d)\n", st.Name, st.Champion.Version[:min(12, len(st.Champion.Version))], st.Revision)
		}
	case "shadow", "split":
		if !need(2, "STAGE VERSION --share S [--name N] [--params JSON]") {
			return 2
		}
		if !(*share > 0 && *share <= 1) {
			fmt.Fprintln(stderr, "engine plugin: --share must be in (0, 1], e.g. --share 0.1")
			return 2
		}
		p, err := c.Plugin(ctx, pos[1])
		version := pos[1]
		if err == nil {
			version = p.Version
		} else if !registry.IsNative(pos[1]) {
			return fail(stderr, err)
		}
		ch := registry.Challenger{Name: *name, Variant: registry.Variant{Version: version, Params: raw}, Mode: cmd, Share: *share}
		if ch.Name == "" {
			ch.Name = "c-" + strings.TrimPrefix(version, registry.NativePrefix)[:min(8, len(strings.TrimPrefix(version, registry.NativePrefix)))]
		}
		if cmd == "split" && !*noCanary {
			ch.Canary = &registry.Canary{Window: registry.Duration(*cWindow), MinRequests: *cMin, MaxErrorRate: *cErr,
				MaxFallbackRate: *cFall, MaxP99: registry.Duration(*cP99), MaxP99Ratio: *cRatio, MaxCTRDrop: *cCTR}
		}
		st, err := c.AddChallenger(ctx, pos[0], ch)
		if err != nil {
			return fail(stderr, err)
		}
		res = st
		if !out.json {
			fmt.Fprintf(stdout, "stage %s: challenger %s = %s, %s %g (revision %d)\n", st.Name, ch.Name, version[:min(12, len(version))], cmd, *share, st.Revision)
		}
	case "unchallenge":
		if !need(2, "STAGE NAME") {
			return 2
		}
		st, err := c.RemoveChallenger(ctx, pos[0], pos[1])
		if err != nil {
			return fail(stderr, err)
		}
		res = st
		if !out.json {
			fmt.Fprintf(stdout, "stage %s: challenger %s removed (revision %d)\n", st.Name, pos[1], st.Revision)
		}
	case "compare":
		if !need(1, "STAGE") {
			return 2
		}
		cs, err := c.Compare(ctx, pos[0])
		if err != nil {
			return fail(stderr, err)
		}
		res = cs
		if !out.json {
			printCompare(stdout, cs)
		}
	case "events":
		evs, err := c.Events(ctx, *n)
		if err != nil {
			return fail(stderr, err)
		}
		res = map[string]any{"events": evs}
		if !out.json {
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			for _, e := range evs {
				v := e.Version
				if len(v) > 12 && !registry.IsNative(v) {
					v = v[:12]
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Local().Format("2006-01-02 15:04:05"), e.Action, e.Stage, v, e.Caller, e.Detail)
			}
			tw.Flush()
		}
	case "rm":
		if !need(1, "VERSION") {
			return 2
		}
		p, err := c.DeletePlugin(ctx, pos[0])
		if err != nil {
			return fail(stderr, err)
		}
		res = p
		if !out.json {
			fmt.Fprintf(stdout, "deleted %s %s\n", p.Name, p.Version)
		}
	default:
		fmt.Fprintf(stderr, "engine plugin: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if out.json {
		b, _ := json.MarshalIndent(res, "", "  ")
		fmt.Fprintln(stdout, string(b))
	}
	return 0
}

type printer struct {
	w    io.Writer
	json bool
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// parseInterleaved parses flags that may come before, between or after the positional
// arguments, and returns the positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func fail(stderr io.Writer, err error) int {
	var ae *client.Error
	if errors.As(err, &ae) {
		fmt.Fprintf(stderr, "engine plugin: %s\n", ae.Message)
		if ae.Code == "unauthorized" {
			fmt.Fprintln(stderr, "engine plugin: give --token or set PODIUM_ADMIN_TOKEN")
		}
		return 1
	}
	fmt.Fprintln(stderr, "engine plugin:", err)
	return 1
}

func shortV(v string) string {
	if registry.IsNative(v) || len(v) <= 12 {
		return v
	}
	return v[:12]
}

func printStages(w io.Writer, sts []engine.StageStatus) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STAGE\tKIND\tVARIANT\tMODE\tSHARE\tVERSION\tPLUGIN\tRUNS\tFAULT%\tFALLBACK%\tP99 µs\tREV")
	for _, st := range sts {
		for _, v := range st.Variants {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%.2f\t%.2f\t%.0f\t%d\n", st.Name, st.Kind, v.Variant, dash(v.Mode), shareStr(v.Share),
				shortV(v.Version), v.Plugin, v.Window.Runs, 100*v.Window.FaultRate, 100*v.Window.FallbackRate, v.Window.P99US, st.Revision)
		}
	}
	tw.Flush()
}

func printCompare(w io.Writer, cs engine.CompareStatus) {
	fmt.Fprintf(w, "stage %s, champion %s: %d runs in the window, p99 %.0fµs, faults %.2f%%\n", cs.Stage, shortV(cs.Champion.Version),
		cs.Champion.Window.Runs, cs.Champion.Window.P99US, 100*cs.Champion.Window.FaultRate)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHALLENGER\tMODE\tSHARE\tVERSION\tCOMPARED\tDROPPED\tOVERLAP@K\tTAU\t|ΔSCORE|\tP99 µs\tP99 RATIO\tFAULT%")
	for _, c := range cs.Challengers {
		compared, dropped, overlap, tau, delta := "-", "-", "-", "-", "-"
		if s := c.Shadow; s != nil {
			compared, dropped = fmt.Sprint(s.Compared), fmt.Sprint(s.Dropped)
			overlap, tau, delta = fmt.Sprintf("%.3f", s.OverlapAtK), fmt.Sprintf("%.3f", s.KendallTau), fmt.Sprintf("%.4g", s.MeanAbsScoreDelta)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.0f\t%.2f\t%.2f\n", c.Variant, c.Mode, shareStr(c.Share), shortV(c.Version),
			compared, dropped, overlap, tau, delta, c.Window.P99US, c.P99Ratio, 100*c.Window.FaultRate)
	}
	tw.Flush()
	fmt.Fprintf(w, "shadow queue: %d/%d, %d workers, %d dropped\n", cs.ShadowQueue.Len, cs.ShadowQueue.Cap, cs.ShadowQueue.Workers, cs.ShadowQueue.Dropped)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func shareStr(s float64) string {
	if s == 0 {
		return "-"
	}
	return fmt.Sprintf("%g", s)
}
