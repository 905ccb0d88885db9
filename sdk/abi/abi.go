// Package abi defines the Podium plugin ABI: the constants, the request block layout and
// the manifest shared by the engine's Wasm host and the guest SDKs (see sdk/ABI.md).
//
// It has no dependencies outside the standard library and no mutable state, so both the
// host and guests built with GOOS=wasip1 import it. Everything in it is goroutine-safe.
package abi

// Version is the ABI version this package describes. A plugin reports the version it was
// built for in its manifest ("abi") and from its podium_abi_version export; the host
// refuses any other.
const Version = 1

// Magic is the first word of every request block: the bytes "PDM1".
const Magic uint32 = 0x314D4450

// Names of the guest exports the host calls.
const (
	ExportMemory     = "memory"
	ExportABIVersion = "podium_abi_version"
	ExportBuffer     = "podium_buffer"
	ExportInit       = "podium_init"
	ExportCall       = "podium_call"
	// ExportInitialize is the optional reactor initialiser (Go c-shared, WASI reactors).
	ExportInitialize = "_initialize"
	// ExportStart marks a WASI command; plugins must not export it.
	ExportStart = "_start"
)

// Names of the host imports a guest may use, all in module HostModule.
const (
	HostModule = "podium"
	WASIModule = "wasi_snapshot_preview1"

	ImportLog     = "log"
	ImportLookup  = "lookup"
	ImportDot     = "dot"
	ImportCosine  = "cosine"
	ImportWSum    = "wsum"
	ImportSigmoid = "sigmoid"
)

// ManifestSection is the name of the custom section holding the manifest JSON.
const ManifestSection = "podium.manifest"

// LookupIDSpace is the lookup space that resolves an item's string id to its dense id.
const LookupIDSpace = "id"

// Log levels for the log import.
const (
	LogDebug = 0
	LogInfo  = 1
	LogWarn  = 2
	LogError = 3
)

// Logging bounds the host enforces per call and per init (see ABI.md §6).
const (
	LogMaxMessage = 512
	LogMaxLines   = 16
	LogMaxBytes   = 4096
)

// Context entry value types.
const (
	ContextNumber = 1
	ContextString = 2
)

// Header word indexes: the block starts with HeaderWords little-endian uint32 words.
const (
	HMagic       = 0
	HABI         = 1
	HKind        = 2
	HN           = 3
	HK           = 4
	HNFeat       = 5
	HDim         = 6
	HQDim        = 7
	HNAttr       = 8
	HNCtx        = 9
	HFlags       = 10
	HCtxStr      = 11
	HIDs         = 12
	HFeat        = 13
	HEmb         = 14
	HQEmb        = 15
	HAttr        = 16
	HScore       = 17
	HCtx         = 18
	HSID         = 19
	HSIDData     = 20
	HOutScore    = 21
	HOutKeep     = 22
	HOutPin      = 23
	HOutOrder    = 24
	HOutOrderLen = 25
	HBlockLen    = 26

	HeaderWords = 32
	HeaderBytes = HeaderWords * 4
)

// FlagStringIDs is set in the flags word when the block carries string ids.
const FlagStringIDs = 1

// ContextEntryBytes is the size of one context entry; its fields are at the offsets below.
const (
	ContextEntryBytes = 32
	CtxKeyOff         = 0
	CtxKeyLen         = 4
	CtxType           = 8
	CtxStrOff         = 12
	CtxStrLen         = 16
	CtxNum            = 24
)

// Align is the alignment of every section of the block and of the buffer itself.
const Align = 16

// MaxCandidates bounds n in a block; larger requests are refused before any guest runs.
const MaxCandidates = 1 << 20

// Kind is a stage kind. Its string form is used in manifests, its code in the block.
type Kind string

// The stage kinds.
const (
	KindRank      Kind = "rank"
	KindRules     Kind = "rules"
	KindDiversity Kind = "diversity"
)

// Code returns the kind's code in the block header: 1 rank, 2 rules, 3 diversity, 0 for an
// unknown kind.
func (k Kind) Code() uint32 {
	switch k {
	case KindRank:
		return 1
	case KindRules:
		return 2
	case KindDiversity:
		return 3
	}
	return 0
}

// KindOf returns the kind with the given header code, or "" if there is none.
func KindOf(code uint32) Kind {
	switch code {
	case 1:
		return KindRank
	case 2:
		return KindRules
	case 3:
		return KindDiversity
	}
	return ""
}
