//go:build wasip1

package sdk

import (
	"unsafe"

	"github.com/podium-rank/podium/sdk/abi"
)

// The exports of sdk/ABI.md §1. They exist only in wasip1 builds.

//go:wasmexport podium_abi_version
func podiumABIVersion() int32 { return abi.Version }

//go:wasmexport podium_buffer
func podiumBuffer(size int32) int32 {
	b := bufferFor(size)
	if len(b) == 0 {
		return 0
	}
	return int32(uintptr(unsafe.Pointer(&b[0])))
}

//go:wasmexport podium_init
func podiumInit(ptr, n int32) int32 {
	b := blockAt(uintptr(ptr), n)
	if b == nil {
		return 1
	}
	return initialize(b)
}

//go:wasmexport podium_call
func podiumCall(ptr, n int32) int32 {
	b := blockAt(uintptr(ptr), n)
	if b == nil {
		return 12
	}
	return handle(b)
}

//go:wasmimport podium log
func hostLog(level int32, msg unsafe.Pointer, n int32)

//go:wasmimport podium lookup
func hostLookup(space unsafe.Pointer, spaceLen int32, value unsafe.Pointer, valueLen int32) int32

//go:wasmimport podium dot
func hostDot(q, rows unsafe.Pointer, n, dim int32, out unsafe.Pointer)

//go:wasmimport podium cosine
func hostCosine(q, rows unsafe.Pointer, n, dim int32, out unsafe.Pointer)

//go:wasmimport podium wsum
func hostWSum(w, cols unsafe.Pointer, m, n int32, out unsafe.Pointer)

//go:wasmimport podium sigmoid
func hostSigmoid(x unsafe.Pointer, n int32)
