package registry

import (
	"encoding/json"
	"testing"
)

// FuzzStageCheck decodes arbitrary JSON as a stage assignment (what PUT
// /admin/stages/{stage} and registry.json feed in) and checks it: no input may panic, and
// a stage that passes has a champion, valid names and split shares adding up to at most 1.
func FuzzStageCheck(f *testing.F) {
	f.Add(`{"name":"rank","kind":"rank","champion":{"version":"native:linear"}}`)
	f.Add(`{"name":"rank","kind":"rank","champion":{"version":"abcdef12"},"challengers":[{"version":"abcdef1234","mode":"split","share":0.5,"canary":{"window":"1m","max_error_rate":0.1}},{"name":"b","version":"x","mode":"shadow","share":1}],"deadline":"5ms","fallback":"retrieval","cut":10}`)
	f.Add(`{"name":"r","kind":"rules","champion":{"version":"v","params":{"a":1}},"challengers":[{"version":"v","mode":"split","share":0.7},{"version":"w","mode":"split","share":0.7}]}`)
	f.Fuzz(func(t *testing.T, data string) {
		var s Stage
		if json.Unmarshal([]byte(data), &s) != nil {
			return
		}
		if s.Check() != nil {
			return
		}
		split := 0.0
		names := map[string]bool{}
		for _, c := range s.Challengers {
			if c.Mode == ModeSplit {
				split += c.Share
			}
			if names[c.Name] || !validStageName(c.Name) {
				t.Fatalf("accepted challenger name %q", c.Name)
			}
			names[c.Name] = true
		}
		if s.Champion.Version == "" || split > 1+1e-9 || !validStageName(s.Name) {
			t.Fatalf("accepted %+v", s)
		}
	})
}
