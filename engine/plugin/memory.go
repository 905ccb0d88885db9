package plugin

import "github.com/tetratelabs/wazero/experimental"

// linearMemory backs one instance's wasm memory. It enforces the plugin's memory limit
// and records a refused memory.grow, so that a call that hit the limit is reported as
// FaultMemory even when the guest handles the failure and returns. It grows by doubling
// (wazero's default allocator grows page by page, copying each time). See RATIONALE.md,
// "Why our own linear memory allocator?".
type linearMemory struct {
	buf     []byte
	limit   uint64
	refused bool
}

// newAllocator returns an allocator that creates lm's memory with the given limit.
func newAllocator(lm *linearMemory) experimental.MemoryAllocator {
	return experimental.MemoryAllocatorFunc(func(capBytes, maxBytes uint64) experimental.LinearMemory {
		lm.limit = min(lm.limit, maxBytes)
		lm.buf = make([]byte, 0, min(capBytes, lm.limit))
		return lm
	})
}

// Reallocate implements experimental.LinearMemory.
func (m *linearMemory) Reallocate(size uint64) []byte {
	if size > m.limit {
		m.refused = true
		return nil
	}
	if size <= uint64(cap(m.buf)) {
		// The bytes past len are still zero: the guest can only write below len.
		m.buf = m.buf[:size]
		return m.buf
	}
	grown := make([]byte, size, min(max(size, 2*uint64(cap(m.buf))), m.limit))
	copy(grown, m.buf)
	m.buf = grown
	return grown
}

// Free implements experimental.LinearMemory.
func (m *linearMemory) Free() { m.buf = nil }
