// Package bench holds Podium's end-to-end benchmarks: the engine's /v1/rank handler and
// server against a bare fasthttp handler that returns a precomputed top-20, measured in
// the same run. Results and the commands that produce them are in bench/README.md.
package bench
