// Package plugin is Podium's WebAssembly host: it loads, validates, compiles and runs
// ranking stages shipped as .wasm plugins speaking the ABI of sdk/ABI.md.
//
// The lifecycle is explicit. A Runtime compiles modules once (with an on-disk compilation
// cache); Runtime.Load turns the bytes of a .wasm into a *Module, a validated and compiled
// plugin version identified by its sha256; Module.Start initialises a *Plugin with params,
// a pool of instances that serves Call; Plugin.Drain and Plugin.Close retire it, and
// Module.Close releases the compiled code. A registry that swaps versions at run time keeps
// Modules by version and swaps Plugins.
//
// A stage call takes a fully materialised Input (plain Go values) and fills an Output; it
// does no I/O and, apart from the guest's own behaviour, is deterministic. Faults (traps,
// timeouts, bad outputs) come back as a *FaultError so the caller can fall back, and are
// counted per plugin version and fault kind.
package plugin
