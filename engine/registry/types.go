package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/podium-rank/podium/sdk/abi"
)

// Sentinel errors. Errors returned by this package wrap them; test with errors.Is.
var (
	// ErrInvalid reports a plugin refused at upload (it does not load, or its smoke call
	// fails) or a stage assignment that breaks a rule. The message says why.
	ErrInvalid = errors.New("registry: invalid")
	// ErrNotFound reports an unknown plugin version or stage.
	ErrNotFound = errors.New("registry: not found")
	// ErrAmbiguous reports a version prefix that matches more than one plugin.
	ErrAmbiguous = errors.New("registry: ambiguous version prefix")
	// ErrInUse reports a delete of a version that a stage still uses.
	ErrInUse = errors.New("registry: version in use")
	// ErrConflict reports a stage update whose expected revision is not the current one,
	// or a rollback with nothing to return to.
	ErrConflict = errors.New("registry: conflict")
)

// NativePrefix starts the version of a stage implemented in Go inside the engine, such as
// "native:linear"; such versions are not stored in the registry.
const NativePrefix = "native:"

// IsNative reports whether version names a native stage.
func IsNative(version string) bool { return strings.HasPrefix(version, NativePrefix) }

// Plugin describes one stored plugin version. Values are copies; changing them changes
// nothing in the registry.
type Plugin struct {
	// Version is the hex sha256 of the .wasm: the plugin version's identity.
	Version string `json:"version"`
	// Name and Kind come from the manifest.
	Name string   `json:"name"`
	Kind abi.Kind `json:"kind"`
	// Manifest is the embedded manifest.
	Manifest abi.Manifest `json:"manifest"`
	// Size is the .wasm size in bytes.
	Size int `json:"size"`
	// UploadedAt and UploadedBy say when and by whom it was pushed.
	UploadedAt time.Time `json:"uploaded_at"`
	UploadedBy string    `json:"uploaded_by"`
	// Validation is what the upload checked.
	Validation Validation `json:"validation"`
}

// Validation records the checks a plugin passed at upload. A plugin that fails one is
// refused, so a stored plugin always passed them all.
type Validation struct {
	// Checks names what was checked, in order.
	Checks []string `json:"checks"`
	// CompileMS is how long compiling took (short when the compilation cache hit).
	CompileMS float64 `json:"compile_ms"`
	// SmokeCandidates is the size of the synthetic batch of the smoke call, SmokeUS its
	// duration including starting one instance.
	SmokeCandidates int   `json:"smoke_candidates"`
	SmokeUS         int64 `json:"smoke_us"`
}

// Duration is a time.Duration written in JSON as a Go duration string ("5ms").
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON implements json.Unmarshaler; it accepts a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration must be a string such as \"5ms\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration such as \"5ms\"", s)
	}
	*d = Duration(v)
	return nil
}

// Variant is one implementation of a stage: a plugin version (or a native stage) with the
// params it starts with.
type Variant struct {
	// Version is a plugin version (hex sha256) or a native stage ("native:linear",
	// "native:by-retrieval").
	Version string `json:"version"`
	// Params override the manifest's default params; a JSON object or empty.
	Params json.RawMessage `json:"params,omitempty"`
	// Since is when the variant took its role (champion or challenger).
	Since time.Time `json:"since,omitzero"`
}

// Same reports whether v and o start the same thing: same version and params (compared
// as compacted JSON).
func (v Variant) Same(o Variant) bool {
	return v.Version == o.Version && bytes.Equal(compact(v.Params), compact(o.Params))
}

// Challenger modes.
const (
	// ModeShadow runs the challenger off the critical path on a sampled share of
	// requests, on a copy of the champion's input, and only compares.
	ModeShadow = "shadow"
	// ModeSplit serves the challenger to a share of users, sticky by a salted hash of the
	// user id (the session id for anonymous users).
	ModeSplit = "split"
)

// Challenger is a variant that runs beside the champion.
type Challenger struct {
	// Name identifies the challenger in responses ("variant"), statistics and events;
	// unique within the stage, not "champion". Empty gets "c-" and the version's first 8
	// hex digits.
	Name string `json:"name"`
	Variant
	// Mode is ModeShadow or ModeSplit.
	Mode string `json:"mode"`
	// Share is the share of requests sampled (shadow) or of users served (split), in
	// (0, 1]. The split shares of a stage add up to at most 1.
	Share float64 `json:"share"`
	// Canary, for a split challenger, rolls it back automatically when it misbehaves.
	Canary *Canary `json:"canary,omitempty"`
}

// Canary holds the thresholds that roll a split challenger back automatically. A zero
// threshold is not checked.
type Canary struct {
	// Window is the sliding window the rates are measured over (default 1m).
	Window Duration `json:"window,omitempty"`
	// MinRequests is how many challenger runs the window needs before any verdict
	// (default 100).
	MinRequests int `json:"min_requests,omitempty"`
	// MaxErrorRate is the largest acceptable share of runs that faulted (trap, timeout,
	// bad output, memory) (default 0.05).
	MaxErrorRate float64 `json:"max_error_rate,omitempty"`
	// MaxFallbackRate is the largest acceptable share of runs that fell back for any
	// reason (default 0.05).
	MaxFallbackRate float64 `json:"max_fallback_rate,omitempty"`
	// MaxP99 is the largest acceptable p99 latency of the stage run (0: not checked).
	MaxP99 Duration `json:"max_p99,omitempty"`
	// MaxP99Ratio is the largest acceptable ratio of the challenger's p99 to the
	// champion's over the same window (0: not checked).
	MaxP99Ratio float64 `json:"max_p99_ratio,omitempty"`
	// MaxCTRDrop is the largest acceptable relative click-through drop against the
	// champion, e.g. 0.2 for 20% (0: not checked). It needs events and MinImpressions.
	MaxCTRDrop float64 `json:"max_ctr_drop,omitempty"`
	// MinImpressions is how many items the challenger must have served in the window
	// before the click-through is judged (default 1000).
	MinImpressions int `json:"min_impressions,omitempty"`
}

// WithDefaults returns c with its unset fields given their defaults.
func (c Canary) WithDefaults() Canary {
	if c.Window <= 0 {
		c.Window = Duration(time.Minute)
	}
	if c.MinRequests <= 0 {
		c.MinRequests = 100
	}
	if c.MaxErrorRate <= 0 {
		c.MaxErrorRate = 0.05
	}
	if c.MaxFallbackRate <= 0 {
		c.MaxFallbackRate = 0.05
	}
	if c.MinImpressions <= 0 {
		c.MinImpressions = 1000
	}
	return c
}

// Stage is the live assignment of one pipeline stage: its champion, its challengers, the
// champions it may roll back to, and its operational settings.
type Stage struct {
	// Name identifies the stage ("rank", "rerank"...); unique in the pipeline.
	Name string `json:"name"`
	// Kind is rank, rules or diversity; stages run in kind order.
	Kind string `json:"kind"`
	// Champion serves every request not split to a challenger.
	Champion Variant `json:"champion"`
	// Challengers run beside the champion (shadow) or instead of it for some users
	// (split).
	Challengers []Challenger `json:"challengers,omitempty"`
	// History holds previous champions, most recent last; rollback pops it.
	History []Variant `json:"history,omitempty"`
	// Deadline bounds one call of the stage (default 20ms).
	Deadline Duration `json:"deadline,omitempty"`
	// Fallback is "skip" (default) or "retrieval".
	Fallback string `json:"fallback,omitempty"`
	// Cut keeps only the top Cut candidates after a rank stage (0 keeps all).
	Cut int `json:"cut,omitempty"`
	// Salt is mixed into the user hash that assigns users to split challengers; change it
	// to reshuffle users. Empty means the stage name.
	Salt string `json:"salt,omitempty"`
	// Revision counts the changes of the stage; a PUT may name the revision it expects.
	Revision uint64 `json:"revision"`
	// UpdatedAt and UpdatedBy say when and by whom it last changed.
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	UpdatedBy string    `json:"updated_by,omitempty"`
}

// MaxHistory bounds Stage.History.
const MaxHistory = 10

// Clone returns a deep copy of s.
func (s Stage) Clone() Stage {
	c := s
	c.Champion.Params = cloneRaw(s.Champion.Params)
	c.Challengers = make([]Challenger, len(s.Challengers))
	for i, ch := range s.Challengers {
		ch.Params = cloneRaw(ch.Params)
		if ch.Canary != nil {
			cc := *ch.Canary
			ch.Canary = &cc
		}
		c.Challengers[i] = ch
	}
	if len(s.Challengers) == 0 {
		c.Challengers = nil
	}
	c.History = nil
	for _, h := range s.History {
		h.Params = cloneRaw(h.Params)
		c.History = append(c.History, h)
	}
	return c
}

// EffectiveSalt returns the salt of the split hash.
func (s *Stage) EffectiveSalt() string {
	if s.Salt != "" {
		return s.Salt
	}
	return s.Name
}

// DeadlineDuration returns the stage's deadline, 20ms if unset.
func (s *Stage) DeadlineDuration() time.Duration {
	if s.Deadline <= 0 {
		return 20 * time.Millisecond
	}
	return time.Duration(s.Deadline)
}

// Check validates the stage on its own: names, kind, modes, shares, deadline, fallback,
// cut and params. It does not look versions up (Registry.SetStage does).
func (s *Stage) Check() error {
	if !validStageName(s.Name) {
		return fmt.Errorf("%w: stage name %q must be 1 to 64 bytes of [a-z0-9_-]", ErrInvalid, s.Name)
	}
	switch abi.Kind(s.Kind) {
	case abi.KindRank, abi.KindRules, abi.KindDiversity:
	default:
		return fmt.Errorf("%w: stage %q: kind %q, want rank, rules or diversity", ErrInvalid, s.Name, s.Kind)
	}
	if s.Champion.Version == "" {
		return fmt.Errorf("%w: stage %q has no champion version", ErrInvalid, s.Name)
	}
	if err := checkParams(s.Champion.Params); err != nil {
		return fmt.Errorf("%w: stage %q: champion %v", ErrInvalid, s.Name, err)
	}
	if s.Deadline < 0 || time.Duration(s.Deadline) > 10*time.Second {
		return fmt.Errorf("%w: stage %q: deadline %v must be between 0 and 10s", ErrInvalid, s.Name, time.Duration(s.Deadline))
	}
	switch s.Fallback {
	case "", "skip", "retrieval":
	default:
		return fmt.Errorf("%w: stage %q: fallback %q, want skip or retrieval", ErrInvalid, s.Name, s.Fallback)
	}
	if s.Cut < 0 || s.Cut > 0 && s.Kind != string(abi.KindRank) {
		return fmt.Errorf("%w: stage %q: cut must be positive and only rank stages cut", ErrInvalid, s.Name)
	}
	names := map[string]bool{}
	split := 0.0
	for i := range s.Challengers {
		c := &s.Challengers[i]
		if c.Name == "" && len(c.Version) >= 8 {
			c.Name = "c-" + strings.TrimPrefix(c.Version, NativePrefix)[:min(8, len(strings.TrimPrefix(c.Version, NativePrefix)))]
		}
		where := fmt.Sprintf("stage %q: challenger %q", s.Name, c.Name)
		if !validStageName(c.Name) || c.Name == "champion" {
			return fmt.Errorf("%w: %s: name must be 1 to 64 bytes of [a-z0-9_-] and not \"champion\"", ErrInvalid, where)
		}
		if names[c.Name] {
			return fmt.Errorf("%w: %s: the name is used twice", ErrInvalid, where)
		}
		names[c.Name] = true
		if c.Version == "" {
			return fmt.Errorf("%w: %s has no version", ErrInvalid, where)
		}
		if err := checkParams(c.Params); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrInvalid, where, err)
		}
		if !(c.Share > 0 && c.Share <= 1) {
			return fmt.Errorf("%w: %s: share %v must be in (0, 1]", ErrInvalid, where, c.Share)
		}
		switch c.Mode {
		case ModeShadow:
			if c.Canary != nil {
				return fmt.Errorf("%w: %s: a canary applies to split challengers only", ErrInvalid, where)
			}
		case ModeSplit:
			split += c.Share
		default:
			return fmt.Errorf("%w: %s: mode %q, want shadow or split", ErrInvalid, where, c.Mode)
		}
		if c.Canary != nil {
			k := c.Canary
			if k.Window < 0 || k.MinRequests < 0 || k.MaxErrorRate < 0 || k.MaxFallbackRate < 0 || k.MaxP99 < 0 ||
				k.MaxP99Ratio < 0 || k.MaxCTRDrop < 0 || k.MaxCTRDrop > 1 || k.MinImpressions < 0 {
				return fmt.Errorf("%w: %s: canary thresholds must not be negative (max_ctr_drop at most 1)", ErrInvalid, where)
			}
		}
	}
	if split > 1+1e-9 {
		return fmt.Errorf("%w: stage %q: the split shares add up to %v, more than 1", ErrInvalid, s.Name, split)
	}
	return nil
}

func checkParams(p json.RawMessage) error {
	if len(bytes.TrimSpace(p)) == 0 {
		return nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(p, &obj); err != nil || obj == nil {
		return fmt.Errorf("params must be a JSON object")
	}
	return nil
}

func validStageName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// compact returns p as compact JSON, nil for empty or "{}" params.
func compact(p json.RawMessage) []byte {
	p = bytes.TrimSpace(p)
	if len(p) == 0 {
		return nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, p); err != nil {
		return p
	}
	if b.String() == "{}" || b.String() == "null" {
		return nil
	}
	return b.Bytes()
}

func cloneRaw(p json.RawMessage) json.RawMessage {
	if p == nil {
		return nil
	}
	return append(json.RawMessage(nil), p...)
}

// Event is one entry of the registry's operations log: pushes, activations, rollbacks
// (manual or by a canary), challenger changes and deletes.
type Event struct {
	Time   time.Time `json:"time"`
	Action string    `json:"action"`
	Stage  string    `json:"stage,omitempty"`
	// Version is the version the action is about (the new champion, the challenger...).
	Version string `json:"version,omitempty"`
	Caller  string `json:"caller,omitempty"`
	// Detail says more, for people: the reason of a canary rollback, the previous
	// champion...
	Detail string `json:"detail,omitempty"`
}

// Event actions.
const (
	ActionPush           = "push"
	ActionDelete         = "delete"
	ActionActivate       = "activate"
	ActionRollback       = "rollback"
	ActionChallengers    = "challengers"
	ActionCanaryRollback = "canary_rollback"
	ActionSettings       = "settings"
)

// MaxEvents bounds the events the registry keeps.
const MaxEvents = 500
