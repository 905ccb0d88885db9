package registry

import (
	"context"
	"fmt"
	"sync"

	"github.com/podium-rank/podium/engine/plugin"
)

// modEntry is one compiled module of the cache: held by refs users, or idle (refs 0)
// since the LRU clock value used.
type modEntry struct {
	mod  *plugin.Module
	refs int
	used uint64
}

// Acquire returns the compiled module of a stored version, compiling it unless a user
// holds it or it is in the idle cache. Call release exactly once when done, after closing
// every Plugin started from the module; the module then stays idle (at most
// Config.MaxIdleModules of them, least recently used evicted) or is closed. Acquire is
// how the live layer keeps compiling off the request path and memory bounded across
// swaps.
func (r *Registry) Acquire(ctx context.Context, version string) (mod *plugin.Module, release func(), err error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, nil, plugin.ErrClosed
	}
	if e := r.mods[version]; e != nil {
		e.refs++
		r.mu.Unlock()
		return e.mod, r.releaser(version, e), nil
	}
	r.mu.Unlock()
	wasm, err := r.Wasm(version)
	if err != nil {
		return nil, nil, err
	}
	m, err := r.cfg.Runtime.Load(ctx, wasm)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot load plugin %s: %w", version, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		m.Close(ctx)
		return nil, nil, plugin.ErrClosed
	}
	if e := r.mods[version]; e != nil { // loaded concurrently
		m.Close(ctx)
		e.refs++
		return e.mod, r.releaser(version, e), nil
	}
	e := &modEntry{mod: m, refs: 1}
	r.mods[version] = e
	return m, r.releaser(version, e), nil
}

func (r *Registry) releaser(version string, e *modEntry) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			e.refs--
			if e.refs > 0 {
				return
			}
			r.clock++
			e.used = r.clock
			if r.closed || r.plugins[version] == nil {
				e.mod.Close(context.Background())
				if r.mods[version] == e {
					delete(r.mods, version)
				}
				return
			}
			r.evictIdle()
		})
	}
}

// putIdle adds a module nobody holds to the idle cache. Call with r.mu held.
func (r *Registry) putIdle(version string, m *plugin.Module) {
	if _, ok := r.mods[version]; ok {
		m.Close(context.Background())
		return
	}
	r.clock++
	r.mods[version] = &modEntry{mod: m, used: r.clock}
	r.evictIdle()
}

// evictIdle closes the least recently used idle modules beyond MaxIdleModules. Call with
// r.mu held.
func (r *Registry) evictIdle() {
	for {
		idle, oldest := 0, ""
		for v, e := range r.mods {
			if e.refs == 0 {
				idle++
				if oldest == "" || e.used < r.mods[oldest].used {
					oldest = v
				}
			}
		}
		if idle <= r.cfg.MaxIdleModules {
			return
		}
		r.mods[oldest].mod.Close(context.Background())
		delete(r.mods, oldest)
	}
}

// ModuleStats counts the compiled modules the registry holds.
type ModuleStats struct {
	// Held counts modules some stage variant holds; Idle those kept for a quick swap back.
	Held, Idle int
}

// Modules returns the counts of compiled modules held and idle.
func (r *Registry) Modules() ModuleStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s ModuleStats
	for _, e := range r.mods {
		if e.refs > 0 {
			s.Held++
		} else {
			s.Idle++
		}
	}
	return s
}
