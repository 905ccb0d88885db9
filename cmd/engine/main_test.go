package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary run as the engine itself, so the tests below can start,
// SIGKILL and restart a real engine process.
func TestMain(m *testing.M) {
	if args := os.Getenv("PODIUM_RUN_MAIN"); args != "" {
		os.Exit(run(strings.Fields(args)))
	}
	os.Exit(m.Run())
}

var listenRE = regexp.MustCompile(`listening on (http://[0-9.:]+)`)

// startProcess runs the engine with args and returns its base URL once /readyz is 200.
func startProcess(t *testing.T, args string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PODIUM_RUN_MAIN="+args)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil && !sent {
				found <- m[1]
				sent = true
			}
		}
	}()
	var url string
	select {
	case url = <-found:
	case <-time.After(60 * time.Second):
		t.Fatal("engine did not start listening")
	}
	deadline := time.Now().Add(120 * time.Second)
	for {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return cmd, url
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("engine did not become ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAcknowledgedEventSurvivesSIGKILL: an event answered 202 is applied again after the
// engine is killed with SIGKILL and restarted on the same data directory.
func TestAcknowledgedEventSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts engine processes")
	}
	dir := t.TempDir()
	args := "--demo --demo-items 2000 --pipeline native --addr 127.0.0.1:0 --data-dir " + dir
	cmd, url := startProcess(t, args)
	rerank := `{"user_id":"u1","k":5,"candidates":["i1","i2","i3"]}`
	if code, body := post(t, url+"/v1/rank", rerank); code != 200 || !strings.Contains(body, `"i2"`) {
		t.Fatalf("before: %d %s", code, body)
	}
	// A purchase excludes the item from the user's rankings (30 days by default).
	if code, body := post(t, url+"/v1/events", `{"type":"purchase","user_id":"u1","item_id":"i2"}`); code != 202 {
		t.Fatalf("event: %d %s", code, body)
	}
	if _, body := post(t, url+"/v1/rank", rerank); strings.Contains(body, `"i2"`) {
		t.Fatalf("purchase not applied to the next request: %s", body)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	_, url = startProcess(t, args)
	if code, body := post(t, url+"/v1/rank", rerank); code != 200 || strings.Contains(body, `"i2"`) || !strings.Contains(body, `"i3"`) {
		t.Fatalf("after SIGKILL and restart the purchase is lost: %d %s", code, body)
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"--nope"}, {}, {"--demo", "--fsync", "sometimes", "--addr", "127.0.0.1:0", "--demo-items", "100"}} {
		if code := run(args); code == 0 {
			t.Fatalf("run(%v) = 0, want an error", args)
		}
	}
}

// TestEmptyCatalogFedByPUT: --dim without --items starts an empty engine that ranks what
// PUT /v1/items then loads, and events on those items reach the next ranking.
func TestEmptyCatalogFedByPUT(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an engine process")
	}
	_, url := startProcess(t, "--dim 2 --addr 127.0.0.1:0 --admin-addr 127.0.0.1:0 --data-dir "+t.TempDir())
	req, _ := http.NewRequest(http.MethodPut, url+"/v1/items", strings.NewReader(
		`{"id":"a","embedding":[1,0]}`+"\n"+`{"id":"b","embedding":[0.9,0.1]}`+"\n"+`{"id":"c","embedding":[0,1]}`+"\n"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"accepted":3`) {
		t.Fatalf("PUT /v1/items: %d %s", resp.StatusCode, b)
	}
	if code, body := post(t, url+"/v1/events", `{"type":"view","session_id":"s1","item_id":"c"}`); code != 202 {
		t.Fatalf("event: %d %s", code, body)
	}
	code, body := post(t, url+"/v1/rank", `{"session_id":"s1","k":2}`)
	if code != 200 || !strings.Contains(body, `"items":[{"id":"c"`) {
		t.Fatalf("the viewed item should lead the session's next ranking: %d %s", code, body)
	}
}

// TestEvalCommand runs `engine eval` on synthetic sessions against an engine process.
func TestEvalCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an engine process")
	}
	_, url := startProcess(t, "--demo --demo-items 3000 --pipeline native --index flat --addr 127.0.0.1:0 --admin-addr 127.0.0.1:0 --data-dir "+t.TempDir())
	var out, errb strings.Builder
	if code := runEval([]string{"--addr", url, "--demo-sessions", "200", "--demo-items", "3000", "--k", "10"}, &out, &errb); code != 0 {
		t.Fatalf("engine eval = %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "| "+url+" | 10 | next |") {
		t.Fatalf("no report row:\n%s", out.String())
	}
	// Against a baseline engine: both rows and the ratios.
	_, base := startProcess(t, "--demo --demo-items 3000 --pipeline native --index flat --addr 127.0.0.1:0 --admin-addr 127.0.0.1:0 --data-dir "+t.TempDir())
	out.Reset()
	if code := runEval([]string{"--addr", url, "--baseline-addr", base, "--demo-sessions", "100", "--demo-items", "3000"}, &out, &errb); code != 0 {
		t.Fatalf("engine eval --baseline-addr = %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), base+" (baseline) |") || !strings.Contains(out.String(), "candidate / baseline: recall ") {
		t.Fatalf("no comparison:\n%s", out.String())
	}
	logFile := filepath.Join(t.TempDir(), "log.ndjson")
	if code := runEval([]string{"--demo-sessions", "50", "--demo-items", "3000", "--write-log", logFile}, &out, &errb); code != 0 {
		t.Fatalf("--write-log = %d: %s", code, errb.String())
	}
	errb.Reset()
	if code := runEval([]string{"--addr", url, "--events", logFile, "--target", "sideways"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "target") {
		t.Fatalf("a bad target: %d %s", code, errb.String())
	}
	if code := runEval([]string{"--addr", url}, &out, &errb); code != 2 {
		t.Fatalf("no log: %d", code)
	}
}
