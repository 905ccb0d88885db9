package abi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Manifest describes a plugin: its name, stage kind, ABI version, the inputs it needs and
// the defaults of its params. It is stored as JSON in the custom section ManifestSection.
type Manifest struct {
	// Name names the plugin, for example "rank/linear": 1 to 64 bytes of [a-z0-9_./-].
	Name string `json:"name"`
	// Kind is the stage kind the plugin implements.
	Kind Kind `json:"kind"`
	// ABI is the ABI version the plugin was built for.
	ABI int `json:"abi"`
	// Version is a free-form label for people; the engine identifies versions by sha256.
	Version string `json:"version,omitempty"`
	// Description says what the plugin does, for listings.
	Description string `json:"description,omitempty"`
	// Features names the feature columns the plugin reads, in column order.
	Features []string `json:"features,omitempty"`
	// Needs says which other inputs the host must pass.
	Needs Needs `json:"needs"`
	// Params holds the default params: a JSON object, or empty for none.
	Params json.RawMessage `json:"params,omitempty"`
}

// Needs lists the inputs beyond features and scores that a plugin asks for.
type Needs struct {
	// ItemEmbedding asks for the candidates' embeddings, row-major.
	ItemEmbedding bool `json:"item_embedding,omitempty"`
	// QueryEmbedding asks for the user or session embedding.
	QueryEmbedding bool `json:"query_embedding,omitempty"`
	// Attributes names categorical attributes passed as integer codes, in column order.
	Attributes []string `json:"attributes,omitempty"`
	// IDs asks for the candidates' string ids.
	IDs bool `json:"ids,omitempty"`
	// Clock asks for real WASI clocks; the operator must allow it too.
	Clock bool `json:"clock,omitempty"`
}

// ErrManifest reports a missing or invalid manifest.
var ErrManifest = errors.New("abi: invalid manifest")

// maxNameLen bounds plugin, feature and attribute names.
const maxNameLen = 64

// ParseManifest decodes and checks a manifest: unknown fields are refused, name, kind and
// feature names must be valid, and params must be a JSON object. It does not compare ABI
// with Version: the host does, so that it can name both versions in its error.
func ParseManifest(data []byte) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrManifest, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the JSON object", ErrManifest)
	}
	if err := m.Check(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Check validates a manifest's fields (see ParseManifest).
func (m *Manifest) Check() error {
	if !validName(m.Name) {
		return fmt.Errorf("%w: name %q must be 1 to %d bytes of [a-z0-9_./-]", ErrManifest, m.Name, maxNameLen)
	}
	if m.Kind.Code() == 0 {
		return fmt.Errorf("%w: plugin %q has kind %q, want rank, rules or diversity", ErrManifest, m.Name, m.Kind)
	}
	if m.ABI <= 0 {
		return fmt.Errorf("%w: plugin %q has no abi version", ErrManifest, m.Name)
	}
	if err := checkNames("feature", m.Features); err != nil {
		return fmt.Errorf("%w: plugin %q: %v", ErrManifest, m.Name, err)
	}
	if err := checkNames("attribute", m.Needs.Attributes); err != nil {
		return fmt.Errorf("%w: plugin %q: %v", ErrManifest, m.Name, err)
	}
	if len(m.Params) > 0 {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(m.Params, &obj); err != nil || obj == nil {
			return fmt.Errorf("%w: plugin %q: params must be a JSON object", ErrManifest, m.Name)
		}
	}
	return nil
}

// CheckNames reports an error unless names are valid feature or attribute names (1 to 64
// printable ASCII bytes, no spaces) without duplicates. what names them in the error.
func CheckNames(what string, names []string) error { return checkNames(what, names) }

func checkNames(what string, names []string) error {
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if len(n) == 0 || len(n) > maxNameLen {
			return fmt.Errorf("%s name %q must be 1 to %d bytes", what, n, maxNameLen)
		}
		for i := 0; i < len(n); i++ {
			if n[i] <= ' ' || n[i] > '~' {
				return fmt.Errorf("%s name %q has a byte outside printable ASCII", what, n)
			}
		}
		if seen[n] {
			return fmt.Errorf("%s %q listed twice", what, n)
		}
		seen[n] = true
	}
	return nil
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > maxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '/' || c == '-') {
			return false
		}
	}
	return true
}
