package server

import (
	"strings"
	"testing"

	"github.com/podium-rank/podium/engine"
)

func TestDecodeRank(t *testing.T) {
	var st reqState
	msg := decodeRank([]byte(`{"user_id":"u1","session_id":"s1","k":20,"context":{"page":"home","item_id":"i9","n":3},"exclude":["i1"],"candidates":["i3","i4"]}`), &st)
	if msg != "" {
		t.Fatal(msg)
	}
	r := st.req
	if r.UserID != "u1" || r.SessionID != "s1" || r.K != 20 || !r.HasCandidates || len(r.Candidates) != 2 || r.Exclude[0] != "i1" {
		t.Fatalf("decoded %+v", r)
	}
	// Context keys come out sorted, so plugins see a deterministic order.
	if len(r.Context) != 3 || r.Context[0].Key != "item_id" || r.Context[1].Key != "n" || !r.Context[1].IsNum || r.Context[1].Num != 3 || r.Context[2].Str != "home" {
		t.Fatalf("context %+v", r.Context)
	}
	// A state reused for another request carries nothing over.
	if msg := decodeRank([]byte(`{"k":5}`), &st); msg != "" || st.req.HasCandidates || len(st.req.Context) != 0 || st.req.UserID != "" {
		t.Fatalf("reuse: %q %+v", msg, st.req)
	}
}

func FuzzDecodeRank(f *testing.F) {
	for _, s := range []string{
		`{"user_id":"u1","session_id":"s1","k":20,"context":{"page":"home","item_id":"i9"},"exclude":["i1"],"candidates":["i3","i4"]}`,
		`{"k":1e400}`, `{"k":-1}`, `{"context":{"a":null}}`, `{"candidates":null}`, `[]`, `"x"`, `{"k":20,"k":30}`,
		`{"user_id":"\u0000\ud800"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var st reqState
		msg := decodeRank(body, &st)
		if msg != "" {
			if strings.ContainsAny(msg, "\n") {
				t.Fatalf("message has a newline: %q", msg)
			}
			return
		}
		r := &st.req
		if r.K < 0 || r.K > engine.MaxK {
			t.Fatalf("accepted k %d", r.K)
		}
		if len(r.Context) > MaxContextKeys {
			t.Fatalf("accepted %d context keys", len(r.Context))
		}
		for _, s := range r.Exclude {
			if s == "" {
				t.Fatal("accepted an empty exclude id")
			}
		}
		// Whatever decodes must encode: the response writer escapes every string.
		b := appendString(nil, r.UserID)
		if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
			t.Fatalf("bad string encoding %q", b)
		}
	})
}

func TestAppendString(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := string(appendString(nil, in)); got != want {
			t.Fatalf("appendString(%q) = %s, want %s", in, got, want)
		}
	}
	f("i1", `"i1"`)
	f(`a"b\c`, `"a\"b\\c"`)
	f("x\ny\t\x01", `"x\ny\t\u0001"`)
	f("é\u2028", `"é\u2028"`)
	f("\xff", `"\ufffd"`)
}
