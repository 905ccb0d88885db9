package plugin

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors returned by this package wrap them; test with errors.Is.
var (
	// ErrInvalid reports a module that fails validation: manifest, exports, imports or ABI
	// version. Such a module never compiles into a Module.
	ErrInvalid = errors.New("plugin: invalid plugin")
	// ErrABIVersion reports a plugin built for another ABI version; it wraps ErrInvalid
	// through *ABIVersionError.
	ErrABIVersion = errors.New("plugin: ABI version mismatch")
	// ErrInput reports an Input that does not match the plugin's needs (lengths, k); it is
	// the caller's error, not the plugin's, and no guest code ran.
	ErrInput = errors.New("plugin: bad input")
	// ErrParams reports params that are not a JSON object or name invalid features.
	ErrParams = errors.New("plugin: bad params")
	// ErrDraining is returned by Call once Drain or Close has begun.
	ErrDraining = errors.New("plugin: plugin is draining")
	// ErrClosed is returned by operations on a closed Runtime or Module.
	ErrClosed = errors.New("plugin: closed")
)

// ABIVersionError reports a plugin built for an ABI version the engine does not speak.
type ABIVersionError struct {
	Plugin string // the plugin's manifest name
	Got    int    // the version the plugin was built for
	Want   int    // the version this engine speaks
	Where  string // "manifest" or "podium_abi_version export"
}

// Error implements error.
func (e *ABIVersionError) Error() string {
	return fmt.Sprintf("plugin %q was built for ABI version %d (per its %s), but this engine speaks ABI version %d",
		e.Plugin, e.Got, e.Where, e.Want)
}

// Is makes errors.Is(err, ErrABIVersion) and errors.Is(err, ErrInvalid) hold.
func (e *ABIVersionError) Is(target error) bool {
	return target == ErrABIVersion || target == ErrInvalid
}

// FaultKind classifies a failed stage call.
type FaultKind uint8

// The fault kinds. On every kind but FaultStatus the instance that ran the call is
// discarded and replaced lazily.
const (
	// FaultStatus: the guest returned a non-zero status from podium_call.
	FaultStatus FaultKind = iota
	// FaultTrap: the guest trapped (unreachable, out-of-bounds access, a Go panic, a
	// kernel called with bad arguments, proc_exit).
	FaultTrap
	// FaultTimeout: the call ran past its deadline and was stopped.
	FaultTimeout
	// FaultBadOutput: the outputs broke the rules of sdk/ABI.md §4 (NaN or infinite
	// score, keep not 0 or 1, pin or index out of range, duplicate in the order).
	FaultBadOutput
	// FaultMemory: the instance reached its memory limit during the call.
	FaultMemory
	// FaultInit: a fresh instance could not be started (instantiation, _initialize or
	// podium_init failed) when the call needed one.
	FaultInit

	// NumFaultKinds is the number of fault kinds, for arrays indexed by FaultKind.
	NumFaultKinds = 6
)

var faultNames = [NumFaultKinds]string{"status", "trap", "timeout", "bad_output", "memory", "init"}

// String returns the kind's stable name, used in metrics and responses.
func (k FaultKind) String() string {
	if int(k) < len(faultNames) {
		return faultNames[k]
	}
	return fmt.Sprintf("fault(%d)", k)
}

// FaultError is the error of a stage call that failed because of the plugin. The caller
// falls back (by default: skips the stage and keeps the previous order).
type FaultError struct {
	Kind    FaultKind
	Plugin  string // manifest name
	Version string // sha256 of the .wasm, hex
	Detail  string // what happened, for people; may end with the guest's last stderr bytes
	Err     error  // the underlying error, if any (wazero's trap error, ...)
}

// Error implements error.
func (e *FaultError) Error() string {
	s := fmt.Sprintf("plugin %s@%s: %s: %s", e.Plugin, short(e.Version), e.Kind, e.Detail)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying error.
func (e *FaultError) Unwrap() error { return e.Err }

// short returns the 12-hex-digit prefix of a version, the form shown to people.
func short(version string) string {
	if len(version) > 12 {
		return version[:12]
	}
	return version
}
