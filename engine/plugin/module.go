package plugin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/podium-rank/podium/engine/plugin/internal/interrupt"
	"github.com/podium-rank/podium/sdk/abi"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// Module is a validated, compiled plugin version: the unit a registry stores, identified by
// the sha256 of its .wasm. Start it (any number of times, with different params) to get
// Plugins that serve calls. It is goroutine-safe.
type Module struct {
	rt       *Runtime
	version  string
	manifest abi.Manifest
	compiled wazero.CompiledModule
	size     int
	compile  time.Duration

	mu      sync.Mutex
	plugins map[*Plugin]struct{}
	retired Stats // counters of closed plugins
	closed  bool
}

// exportSig is the signature a required export must have.
type exportSig struct {
	name            string
	params, results []api.ValueType
}

var requiredExports = []exportSig{
	{abi.ExportABIVersion, nil, []api.ValueType{api.ValueTypeI32}},
	{abi.ExportBuffer, []api.ValueType{api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}},
	{abi.ExportInit, []api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}},
	{abi.ExportCall, []api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}},
}

// Version returns the hex sha256 of wasm, the identity of a plugin version.
func Version(wasm []byte) string {
	sum := sha256.Sum256(wasm)
	return hex.EncodeToString(sum[:])
}

// ReadManifest returns the manifest embedded in wasm, checked (abi.ParseManifest) but not
// compared with the engine's ABI version.
func ReadManifest(wasm []byte) (*abi.Manifest, error) {
	data, ok, err := abi.CustomSection(wasm, abi.ManifestSection)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if !ok {
		return nil, fmt.Errorf("%w: no %q custom section; embed one with sdk/cmd/podium-manifest", ErrInvalid, abi.ManifestSection)
	}
	m, err := abi.ParseManifest(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return m, nil
}

// Load validates and compiles a plugin: the manifest (present, well-formed, same ABI
// version as the engine), the exports and their signatures, the imports (only "podium"
// functions this engine provides and WASI), then compiles it with deadline metering (see
// internal/interrupt) through the compilation cache. Errors wrap ErrInvalid and say what
// is wrong; an ABI mismatch is an *ABIVersionError naming both versions. The module is
// not instantiated: Start does that.
func (r *Runtime) Load(ctx context.Context, wasm []byte) (*Module, error) {
	m, err := ReadManifest(wasm)
	if err != nil {
		return nil, err
	}
	if m.ABI != abi.Version {
		return nil, &ABIVersionError{Plugin: m.Name, Got: m.ABI, Want: abi.Version, Where: "manifest"}
	}
	metered, _, err := interrupt.Instrument(wasm)
	if err != nil {
		return nil, fmt.Errorf("%w: plugin %q: %v", ErrInvalid, m.Name, err)
	}
	start := time.Now()
	compiled, err := r.rt.CompileModule(ctx, metered)
	if err != nil {
		return nil, fmt.Errorf("%w: plugin %q does not compile: %v", ErrInvalid, m.Name, err)
	}
	elapsed := time.Since(start)
	if err := checkShape(m.Name, compiled); err != nil {
		compiled.Close(ctx)
		return nil, err
	}
	return &Module{
		rt:       r,
		version:  Version(wasm),
		manifest: *m,
		compiled: compiled,
		size:     len(wasm),
		compile:  elapsed,
		plugins:  make(map[*Plugin]struct{}),
	}, nil
}

// checkShape validates exports and imports.
func checkShape(name string, c wazero.CompiledModule) error {
	host := make(map[string]hostFunc)
	for _, f := range hostFuncs() {
		host[f.name] = f
	}
	for _, imp := range c.ImportedFunctions() {
		mod, fn, _ := imp.Import()
		switch mod {
		case abi.WASIModule:
			continue // wazero refuses functions it does not implement at instantiation
		case abi.HostModule:
			f, ok := host[fn]
			if !ok {
				return fmt.Errorf("%w: plugin %q imports podium.%s, which this engine does not provide", ErrInvalid, name, fn)
			}
			if !slices.Equal(imp.ParamTypes(), f.params) || !slices.Equal(imp.ResultTypes(), f.results) {
				return fmt.Errorf("%w: plugin %q imports podium.%s with params %v results %v, want params %v results %v",
					ErrInvalid, name, fn, typeNames(imp.ParamTypes()), typeNames(imp.ResultTypes()),
					typeNames(f.params), typeNames(f.results))
			}
		default:
			return fmt.Errorf("%w: plugin %q imports %s.%s; only %q and %q are allowed", ErrInvalid, name, mod, fn, abi.HostModule, abi.WASIModule)
		}
	}
	exports := c.ExportedFunctions()
	for _, want := range requiredExports {
		def, ok := exports[want.name]
		if !ok {
			return fmt.Errorf("%w: plugin %q does not export %s (see sdk/ABI.md §1)", ErrInvalid, name, want.name)
		}
		if !slices.Equal(def.ParamTypes(), want.params) || !slices.Equal(def.ResultTypes(), want.results) {
			return fmt.Errorf("%w: plugin %q exports %s with params %v results %v, want params %v results %v",
				ErrInvalid, name, want.name, typeNames(def.ParamTypes()), typeNames(def.ResultTypes()),
				typeNames(want.params), typeNames(want.results))
		}
	}
	if _, ok := exports[abi.ExportStart]; ok {
		return fmt.Errorf("%w: plugin %q exports _start: it is a WASI command; build a reactor (Go: -buildmode=c-shared)", ErrInvalid, name)
	}
	if _, ok := c.ExportedMemories()[abi.ExportMemory]; !ok {
		return fmt.Errorf("%w: plugin %q does not export its memory as %q", ErrInvalid, name, abi.ExportMemory)
	}
	if len(c.ImportedMemories()) > 0 {
		return fmt.Errorf("%w: plugin %q imports a memory; it must define its own", ErrInvalid, name)
	}
	return nil
}

func typeNames(ts []api.ValueType) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = api.ValueTypeName(t)
	}
	return out
}

// Version returns the module's version: the hex sha256 of its .wasm.
func (m *Module) Version() string { return m.version }

// Manifest returns a copy of the module's manifest.
func (m *Module) Manifest() abi.Manifest {
	c := m.manifest
	c.Features = slices.Clone(c.Features)
	c.Needs.Attributes = slices.Clone(c.Needs.Attributes)
	c.Params = slices.Clone(c.Params)
	return c
}

// Name returns the manifest name.
func (m *Module) Name() string { return m.manifest.Name }

// Kind returns the stage kind.
func (m *Module) Kind() abi.Kind { return m.manifest.Kind }

// Size returns the size in bytes of the .wasm.
func (m *Module) Size() int { return m.size }

// CompileTime returns how long compiling took (short when the compilation cache hit).
func (m *Module) CompileTime() time.Duration { return m.compile }

// Stats returns the counters of every Plugin started from this module, live or closed.
func (m *Module) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.retired
	for p := range m.plugins {
		s.add(p.Stats())
	}
	s.Name, s.Version = m.manifest.Name, m.version
	return s
}

// Close releases the compiled code. Plugins started from the module must be closed first;
// Close fails if one is still open. It is safe to call more than once.
func (m *Module) Close(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	if n := len(m.plugins); n > 0 {
		return fmt.Errorf("plugin: cannot close module %s@%s: %d plugins still open", m.manifest.Name, short(m.version), n)
	}
	m.closed = true
	return m.compiled.Close(ctx)
}

func (m *Module) attach(p *Plugin) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.plugins[p] = struct{}{}
	return nil
}

func (m *Module) detach(p *Plugin) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.plugins[p]; ok {
		delete(m.plugins, p)
		m.retired.add(p.Stats())
	}
}
