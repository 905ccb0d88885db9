package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/bytedance/sonic"
	"github.com/podium-rank/podium/engine/demo"
	"github.com/podium-rank/podium/engine/eval"
)

// runEval is `engine eval`: replay an interaction log against a running engine and score
// /v1/rank by what users did next.
func runEval(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("engine eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, `usage: engine eval [flags]

Replays an interaction log (NDJSON or a JSON array of /v1/events interactions) against a
running engine over HTTP: the earliest sessions as history, the latest --test-fraction of
them event by event, asking /v1/rank after each and scoring the answer against what the
session did next (recall@k, hit rate, NDCG@k, MRR). The engine keeps the replayed events,
so start a fresh one (--data-dir "" keeps them in memory) for each run.

  engine --demo --demo-items 20000 --data-dir "" &
  engine eval --demo-sessions 3000 --demo-items 20000

Flags:`)
		fs.PrintDefaults()
	}
	var (
		addr     = fs.String("addr", "http://127.0.0.1:8080", "the engine's public API")
		baseAddr = fs.String("baseline-addr", "", "a second engine (the current pipeline) to replay the same log into and compare against")
		file     = fs.String("events", "", "interaction log to replay (NDJSON or JSON array; - for stdin)")
		demoN    = fs.Int("demo-sessions", 0, "instead of --events, replay this many synthetic sessions over the demo catalog (engine --demo)")
		demoIt   = fs.Int("demo-items", 0, "items of the demo catalog the engine serves (its --demo-items; default 100000)")
		writeLog = fs.String("write-log", "", "write the synthetic log of --demo-sessions to this file as NDJSON and exit")
		k        = fs.Int("k", 20, "items asked for and scored per request")
		target   = fs.String("target", eval.TargetNext, "what a ranking is scored against: next (the next item) or rest (every later item of the session)")
		frac     = fs.Float64("test-fraction", 0.2, "share of sessions, the latest, that are scored")
		maxTest  = fs.Int("max-test", 0, "score at most this many sessions (0: all test sessions)")
		anon     = fs.Bool("anonymous", false, "leave user_id out of rank requests: only the session speaks")
		ctxItem  = fs.Bool("context-item", false, "send the current item as context.item_id (an item page)")
		asJSON   = fs.Bool("json", false, "print the report as JSON")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var log []eval.Event
	switch {
	case *demoN > 0:
		cfg := demo.DefaultConfig()
		if *demoIt > 0 {
			cfg.Items = *demoIt
		}
		scfg := demo.DefaultSessionConfig()
		scfg.Sessions = *demoN
		inter := demo.Sessions(demo.Generate(cfg), scfg)
		if *writeLog != "" {
			f, err := os.Create(*writeLog)
			if err == nil {
				err = demo.WriteInteractionsNDJSON(f, inter)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
			if err != nil {
				fmt.Fprintln(stderr, "engine eval:", err)
				return 1
			}
			fmt.Fprintf(stdout, "wrote %d interactions of %d sessions to %s\n", len(inter), *demoN, *writeLog)
			return 0
		}
		for _, e := range inter {
			log = append(log, eval.Event{Type: e.Type, UserID: e.UserID, SessionID: e.SessionID, ItemID: e.ItemID, TS: e.TS})
		}
	case *file != "":
		in := io.Reader(os.Stdin)
		if *file != "-" {
			f, err := os.Open(*file)
			if err != nil {
				fmt.Fprintln(stderr, "engine eval:", err)
				return 1
			}
			defer f.Close()
			in = f
		}
		var err error
		if log, err = eval.ReadEvents(in); err != nil {
			fmt.Fprintln(stderr, "engine eval:", err)
			return 1
		}
	default:
		fmt.Fprintln(stderr, "engine eval: give --events FILE or --demo-sessions N")
		return 2
	}
	ecfg := eval.Config{Addr: *addr, K: *k, Target: *target, TestFraction: *frac, MaxTest: *maxTest,
		Anonymous: *anon, ContextItem: *ctxItem}
	names := []string{*addr}
	if *baseAddr != "" {
		names = append(names, *baseAddr+" (baseline)")
	}
	var reps []*eval.Report
	for i, a := range []string{*addr, *baseAddr}[:len(names)] {
		ecfg.Addr = a
		rep, err := eval.Run(ecfg, log)
		if err != nil {
			fmt.Fprintf(stderr, "engine eval: %s: %v\n", names[i], err)
			return 1
		}
		reps = append(reps, rep)
	}
	if *asJSON {
		var b []byte
		if len(reps) == 1 {
			b, _ = sonic.ConfigStd.MarshalIndent(reps[0], "", "  ")
		} else {
			b, _ = sonic.ConfigStd.MarshalIndent(map[string]*eval.Report{"candidate": reps[0], "baseline": reps[1]}, "", "  ")
		}
		fmt.Fprintln(stdout, string(b))
		return 0
	}
	rep := reps[0]
	fmt.Fprintf(stdout, "%d events, %d as history, %d test sessions, %d rejected by the engine\n\n", rep.Events, rep.History, rep.TestSessions, rep.Rejected)
	fmt.Fprint(stdout, eval.Markdown(names, reps))
	if len(reps) == 2 {
		fmt.Fprintln(stdout)
		fmt.Fprintln(stdout, eval.Compare(reps[0], reps[1]))
	}
	return 0
}
