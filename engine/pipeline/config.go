package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Config is a pipeline as written in a config file (`engine --pipeline FILE`): the stages
// in the order they run, each naming the plugin that implements it.
//
//	{"stages": [
//	  {"name": "rank", "kind": "rank", "plugin": "plugins/rank/linear/linear.wasm",
//	   "params": {"weights": {"retrieval_score": 1, "popularity": 0.3}},
//	   "deadline": "5ms", "fallback": "retrieval", "cut": 300},
//	  {"name": "rerank", "kind": "rank", "plugin": "plugins/rank/gbdt/gbdt.wasm",
//	   "files": {"model": "models/ctr.json"}, "deadline": "10ms"},
//	  {"name": "rules", "kind": "rules", "plugin": "plugins/rules/merch/merch.wasm",
//	   "params": {"cap": {"attribute": "brand", "max": 3}}},
//	  {"name": "diversity", "kind": "diversity", "plugin": "native:by-retrieval"}
//	]}
type Config struct {
	Stages []StageConfig `json:"stages"`
}

// StageConfig configures one stage.
type StageConfig struct {
	// Name identifies the stage in responses and the admin API; unique in a pipeline.
	Name string `json:"name"`
	// Kind is rank, rules or diversity. Stages must appear in kind order.
	Kind string `json:"kind"`
	// Plugin is the path of a .wasm file (relative to the config file), or
	// "native:NAME" for a stage built into the engine.
	Plugin string `json:"plugin"`
	// Params overlay the plugin manifest's default params.
	Params json.RawMessage `json:"params,omitempty"`
	// Files maps a param name to a file (relative to the config file) whose contents
	// become that param: parsed as JSON if they are JSON, else a string. This is how a
	// model file reaches a generic plugin.
	Files map[string]string `json:"files,omitempty"`
	// Deadline bounds one call of the stage, as a Go duration ("5ms"); default 20ms.
	Deadline string `json:"deadline,omitempty"`
	// Fallback is what happens when the stage fails: "skip" (keep the order as it was)
	// or "retrieval" (order by retrieval score).
	Fallback string `json:"fallback,omitempty"`
	// Cut keeps only the top Cut candidates after a rank stage (0 keeps all).
	Cut int `json:"cut,omitempty"`
}

// DefaultDeadline bounds a stage call when its config gives none.
const DefaultDeadline = 20 * time.Millisecond

// ErrConfig reports an invalid pipeline config.
var ErrConfig = errors.New("pipeline: invalid config")

// ParseConfig decodes and checks a pipeline config. Unknown fields are refused so that a
// typo does not silently change what ranks.
func ParseConfig(data []byte) (*Config, error) {
	var c Config
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if err := c.Check(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Check validates the config: at least one stage, unique names, known kinds in order,
// a plugin for each, valid deadlines, fallbacks and cuts.
func (c *Config) Check() error {
	if len(c.Stages) == 0 {
		return fmt.Errorf("%w: no stages", ErrConfig)
	}
	names := map[string]bool{}
	last := KindRank
	for i := range c.Stages {
		s := &c.Stages[i]
		where := fmt.Sprintf("stages[%d]", i)
		if s.Name == "" {
			return fmt.Errorf("%w: %s has no name", ErrConfig, where)
		}
		where += fmt.Sprintf(" (%q)", s.Name)
		if names[s.Name] {
			return fmt.Errorf("%w: %s: the name is used twice", ErrConfig, where)
		}
		names[s.Name] = true
		k, err := ParseKind(s.Kind)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrConfig, where, err)
		}
		if k < last {
			return fmt.Errorf("%w: %s: a %s stage cannot follow a %s stage (order: rank, rules, diversity)", ErrConfig, where, k, last)
		}
		last = k
		if s.Plugin == "" {
			return fmt.Errorf("%w: %s has no plugin", ErrConfig, where)
		}
		if _, err := s.DeadlineDuration(); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrConfig, where, err)
		}
		if _, err := ParseFallback(s.Fallback); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrConfig, where, err)
		}
		if s.Cut < 0 || s.Cut > 0 && k != KindRank {
			return fmt.Errorf("%w: %s: cut must be positive and only rank stages cut", ErrConfig, where)
		}
		if len(s.Params) > 0 && !bytes.HasPrefix(bytes.TrimSpace(s.Params), []byte("{")) {
			return fmt.Errorf("%w: %s: params must be a JSON object", ErrConfig, where)
		}
	}
	return nil
}

// DeadlineDuration returns the stage's deadline, DefaultDeadline if unset.
func (s *StageConfig) DeadlineDuration() (time.Duration, error) {
	if s.Deadline == "" {
		return DefaultDeadline, nil
	}
	d, err := time.ParseDuration(s.Deadline)
	if err != nil {
		return 0, fmt.Errorf("deadline %q is not a duration such as \"5ms\"", s.Deadline)
	}
	if d <= 0 || d > 10*time.Second {
		return 0, fmt.Errorf("deadline %v must be between 0 and 10s", d)
	}
	return d, nil
}
