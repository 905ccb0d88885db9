package admin_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/podium-rank/podium/engine"
	"github.com/podium-rank/podium/engine/admin"
	"github.com/podium-rank/podium/engine/admin/admintest"
	"github.com/podium-rank/podium/engine/registry/registrytest"
)

func truth(t *testing.T, cond bool, format string, args ...any) {
	t.Helper()
	if !cond {
		t.Fatalf(format, args...)
	}
}

// call sends a request and returns the status and body.
func call(t *testing.T, method, url, token string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	req.Header.Set(admin.CallerHeader, "tester")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func errCode(t *testing.T, body []byte) string {
	t.Helper()
	var eb admin.ErrorBody
	if err := json.Unmarshal(body, &eb); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return eb.Error.Code
}

var routes = []struct{ method, path string }{
	{"POST", "/admin/plugins"},
	{"GET", "/admin/plugins"},
	{"GET", "/admin/plugins/abcdef"},
	{"DELETE", "/admin/plugins/abcdef"},
	{"GET", "/admin/stages"},
	{"GET", "/admin/stages/rank"},
	{"PUT", "/admin/stages/rank"},
	{"POST", "/admin/stages/rank/rollback"},
	{"GET", "/admin/compare/rank"},
	{"GET", "/admin/events"},
	{"GET", "/admin/metrics"},
	{"GET", "/admin/nope"},
}

// TestAdminNeedsTheToken: every route (and unknown ones) answers 401 without the right
// bearer token, and the public listener does not serve any admin route.
func TestAdminNeedsTheToken(t *testing.T) {
	env := admintest.Start(t, engine.LiveConfig{})
	for _, r := range routes {
		for _, auth := range []string{"", "Bearer", "Bearer wrong", "Basic " + admintest.Token, "bearer " + admintest.Token, "Bearer " + admintest.Token + "x"} {
			status, body := call(t, r.method, env.AdminURL+r.path, auth, nil)
			truth(t, status == 401 && errCode(t, body) == admin.CodeUnauthorized, "%s %s with %q: %d %s", r.method, r.path, auth, status, body)
		}
		status, body := call(t, r.method, env.PublicURL+r.path, "Bearer "+admintest.Token, nil)
		truth(t, status == 404 && errCode(t, body) == "not_found", "public %s %s: %d %s", r.method, r.path, status, body)
	}
	status, _ := call(t, "GET", env.AdminURL+"/admin/stages", "Bearer "+admintest.Token, nil)
	truth(t, status == 200, "with the token: %d", status)
}

func TestCheckListen(t *testing.T) {
	for _, c := range []struct {
		addr string
		cfg  admin.Config
		ok   bool
	}{
		{"0.0.0.0:8081", admin.Config{Token: "t"}, true},
		{"127.0.0.1:8081", admin.Config{}, false},
		{"127.0.0.1:8081", admin.Config{Insecure: true}, true},
		{"[::1]:8081", admin.Config{Insecure: true}, true},
		{"localhost:8081", admin.Config{Insecure: true}, true},
		{"0.0.0.0:8081", admin.Config{Insecure: true}, false},
		{":8081", admin.Config{Insecure: true}, false},
		{"10.0.0.1:8081", admin.Config{Insecure: true}, false},
	} {
		err := admin.CheckListen(c.addr, c.cfg)
		truth(t, (err == nil) == c.ok, "CheckListen(%q, %+v) = %v", c.addr, c.cfg, err)
	}
	_, err := admin.New(nil, admin.Config{})
	truth(t, err == admin.ErrNoToken, "New without a token: %v", err)
}

// TestAdminFlow walks through the routes: push (and refusals), list, activate, serve,
// roll back, compare, delete.
func TestAdminFlow(t *testing.T) {
	env := admintest.Start(t, engine.LiveConfig{})
	tok := "Bearer " + admintest.Token
	wasm := registrytest.Live(t)
	v1, v2 := registrytest.Version(t, wasm, 1), registrytest.Version(t, wasm, 2)

	status, body := call(t, "POST", env.AdminURL+"/admin/plugins", tok, v1)
	truth(t, status == 201, "push: %d %s", status, body)
	var pr admin.PushResult
	truth(t, json.Unmarshal(body, &pr) == nil && pr.Name == "test/live" && len(pr.Version) == 64 && !pr.Existed && pr.UploadedBy == "tester", "push answer %s", body)
	status, body = call(t, "POST", env.AdminURL+"/admin/plugins", tok, v1)
	truth(t, status == 200 && strings.Contains(string(body), `"existed": true`), "push again: %d %s", status, body)
	status, body = call(t, "POST", env.AdminURL+"/admin/plugins", tok, registrytest.WithParams(t, wasm, `{"trap":"always"}`))
	truth(t, status == 422 && errCode(t, body) == admin.CodeInvalidPlugin && strings.Contains(string(body), "smoke call"), "trapping push: %d %s", status, body)
	status, body = call(t, "POST", env.AdminURL+"/admin/plugins", tok, []byte("junk"))
	truth(t, status == 422 && errCode(t, body) == admin.CodeInvalidPlugin, "junk push: %d %s", status, body)
	status, body = call(t, "POST", env.AdminURL+"/admin/plugins", tok, v2)
	truth(t, status == 201, "push v2: %d %s", status, body)
	var pr2 admin.PushResult
	json.Unmarshal(body, &pr2)

	status, body = call(t, "GET", env.AdminURL+"/admin/plugins", tok, nil)
	truth(t, status == 200 && strings.Count(string(body), `"version": "`) == 2, "list: %d %s", status, body)
	status, body = call(t, "GET", env.AdminURL+"/admin/plugins/"+pr.Version[:8], tok, nil)
	truth(t, status == 200 && strings.Contains(string(body), pr.Version), "get by prefix: %d %s", status, body)
	status, body = call(t, "GET", env.AdminURL+"/admin/plugins/0000000000", tok, nil)
	truth(t, status == 404 && errCode(t, body) == admin.CodeNotFound, "get unknown: %d %s", status, body)

	put := func(stage, js string) (int, []byte) {
		return call(t, "PUT", env.AdminURL+"/admin/stages/"+stage, tok, []byte(js))
	}
	status, body = put("rank", `{"champion":{"version":"`+pr.Version[:12]+`"}}`)
	truth(t, status == 200 && strings.Contains(string(body), `"version": "`+pr.Version+`"`), "activate: %d %s", status, body)
	truth(t, strings.Contains(env.Rank(t, "u1"), `"version":"`+pr.Version[:12]+`"`), "served by v1: %s", env.Rank(t, "u1"))
	status, body = put("rank", `{"champion":{"version":"`+pr2.Version+`","params":{"sign":-1}},"challengers":[{"name":"b","version":"`+pr.Version+`","mode":"shadow","share":1}]}`)
	truth(t, status == 200, "activate v2 with a shadow: %d %s", status, body)
	resp := env.Rank(t, "u2")
	truth(t, strings.Contains(resp, `"version":"`+pr2.Version[:12]+`"`) && strings.Contains(resp, `"variant":"champion"`), "served by v2: %s", resp)

	for _, c := range []struct{ body, code string }{
		{`{"champion":{"version":"` + pr.Version + `","params":{"trap":"always"}}}`, admin.CodeInvalidArgument},
		{`{"champion":{"version":"ffffff"}}`, admin.CodeNotFound},
		{`{"champion":{"version":"` + pr.Version + `"},"revision":1}`, admin.CodeConflict},
		{`{"champoin":{}}`, admin.CodeInvalidArgument},
		{`{}`, admin.CodeInvalidArgument},
		{`{"challengers":[{"name":"x","version":"` + pr.Version + `","mode":"split","share":1.5}]}`, admin.CodeInvalidArgument},
	} {
		status, body := put("rank", c.body)
		truth(t, status/100 == 4 && errCode(t, body) == c.code, "PUT %s: %d %s, want %s", c.body, status, body, c.code)
	}
	status, body = put("newstage", `{"challengers":[]}`)
	truth(t, status == 404, "unknown stage without a champion: %d %s", status, body)

	status, body = call(t, "GET", env.AdminURL+"/admin/compare/rank", tok, nil)
	truth(t, status == 200 && strings.Contains(string(body), `"shadow_queue"`) && strings.Contains(string(body), `"variant": "b"`), "compare: %d %s", status, body)
	status, _ = call(t, "GET", env.AdminURL+"/admin/compare/nope", tok, nil)
	truth(t, status == 404, "compare unknown stage: %d", status)

	status, body = call(t, "DELETE", env.AdminURL+"/admin/plugins/"+pr.Version, tok, nil)
	truth(t, status == 409 && errCode(t, body) == admin.CodeInUse, "delete in use: %d %s", status, body)
	status, body = call(t, "POST", env.AdminURL+"/admin/stages/rank/rollback", tok, nil)
	truth(t, status == 200 && strings.Contains(string(body), `"version": "`+pr.Version+`"`), "rollback: %d %s", status, body)
	truth(t, strings.Contains(env.Rank(t, "u1"), `"version":"`+pr.Version[:12]+`"`), "served by v1 after the rollback")
	status, body = call(t, "GET", env.AdminURL+"/admin/stages/rank", tok, nil)
	truth(t, status == 200 && strings.Contains(string(body), `"variants"`), "stage: %d %s", status, body)
	status, body = call(t, "GET", env.AdminURL+"/admin/events?n=3", tok, nil)
	truth(t, status == 200 && strings.Contains(string(body), `"action": "rollback"`) && strings.Contains(string(body), `"caller": "tester"`), "events: %d %s", status, body)
	status, body = call(t, "GET", env.AdminURL+"/admin/metrics", tok, nil)
	truth(t, status == 200 && strings.Contains(string(body), "podium_live_rollbacks_total"), "metrics: %d %s", status, body)
	status, _ = call(t, "PATCH", env.AdminURL+"/admin/stages/rank", tok, nil)
	truth(t, status == 405, "PATCH: %d", status)
}

// TestAdminOnItsOwnListener checks that the admin server only serves its own listener:
// the public server never routes /admin, whatever the token.
func TestAdminOnItsOwnListener(t *testing.T) {
	env := admintest.Start(t, engine.LiveConfig{Logger: slog.New(slog.DiscardHandler)})
	_, pport, _ := net.SplitHostPort(strings.TrimPrefix(env.PublicURL, "http://"))
	_, aport, _ := net.SplitHostPort(strings.TrimPrefix(env.AdminURL, "http://"))
	truth(t, pport != aport, "same port")
	status, _ := call(t, "GET", env.AdminURL+"/v1/rank", "Bearer "+admintest.Token, nil)
	truth(t, status == 404, "the admin listener serves /v1/rank: %d", status)
}
