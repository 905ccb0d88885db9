package pipeline

import (
	"errors"
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	good := `{"stages":[
	 {"name":"rank","kind":"rank","plugin":"a.wasm","params":{"w":1},"deadline":"5ms","fallback":"retrieval","cut":300},
	 {"name":"rules","kind":"rules","plugin":"native:noop"},
	 {"name":"div","kind":"diversity","plugin":"b.wasm","files":{"model":"m.json"}}]}`
	c, err := ParseConfig([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := c.Stages[1].DeadlineDuration(); d != DefaultDeadline || c.Stages[0].Cut != 300 {
		t.Fatalf("config %+v", c)
	}
	bad := []struct{ in, want string }{
		{`{"stages":[]}`, "no stages"},
		{`{"stages":[{"kind":"rank","plugin":"a"}]}`, "has no name"},
		{`{"stages":[{"name":"a","kind":"rank","plugin":"a"},{"name":"a","kind":"rank","plugin":"b"}]}`, "used twice"},
		{`{"stages":[{"name":"a","kind":"ranking","plugin":"a"}]}`, "unknown stage kind"},
		{`{"stages":[{"name":"a","kind":"rules","plugin":"a"},{"name":"b","kind":"rank","plugin":"b"}]}`, "cannot follow"},
		{`{"stages":[{"name":"a","kind":"rank"}]}`, "no plugin"},
		{`{"stages":[{"name":"a","kind":"rank","plugin":"a","deadline":"5"}]}`, "not a duration"},
		{`{"stages":[{"name":"a","kind":"rank","plugin":"a","fallback":"retry"}]}`, "unknown fallback"},
		{`{"stages":[{"name":"a","kind":"rules","plugin":"a","cut":5}]}`, "only rank stages cut"},
		{`{"stages":[{"name":"a","kind":"rank","plugin":"a","params":[1]}]}`, "JSON object"},
		{`{"stages":[{"name":"a","kind":"rank","plugin":"a","weights":{}}]}`, "unknown field"},
	}
	for _, b := range bad {
		_, err := ParseConfig([]byte(b.in))
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), b.want) {
			t.Errorf("ParseConfig(%s) = %v, want an error with %q", b.in, err, b.want)
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"stages":[{"name":"rank","kind":"rank","plugin":"a.wasm","params":{"w":1},"deadline":"5ms","cut":3}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err == nil && len(c.Stages) == 0 {
			t.Fatal("accepted a config without stages")
		}
	})
}
