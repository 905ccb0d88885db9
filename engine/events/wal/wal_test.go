package wal

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

type rec struct {
	seq     uint64
	payload string
}

func replayAll(t testing.TB, l *Log, from uint64) []rec {
	t.Helper()
	var out []rec
	must(t, l.Replay(from, func(seq uint64, p []byte) error {
		out = append(out, rec{seq, string(p)})
		return nil
	}))
	return out
}

func appendN(t testing.TB, l *Log, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		seq, err := l.Append([]byte(fmt.Sprintf("record-%d", i)))
		must(t, err)
		if seq != uint64(i) {
			t.Fatalf("record %d got seq %d", i, seq)
		}
	}
}

func checkRecords(t testing.TB, got []rec, first, last int) {
	t.Helper()
	if len(got) != last-first+1 {
		t.Fatalf("replayed %d records, want %d (%d..%d)", len(got), last-first+1, first, last)
	}
	for i, r := range got {
		want := rec{uint64(first + i), fmt.Sprintf("record-%d", first+i)}
		if r != want {
			t.Fatalf("record %d = %+v, want %+v", i, r, want)
		}
	}
}

func TestAppendReopenReplay(t *testing.T) {
	for _, p := range []SyncPolicy{SyncAlways, SyncInterval, SyncNone} {
		t.Run(p.String(), func(t *testing.T) {
			dir := t.TempDir()
			l, err := Open(dir, Options{Sync: p, Interval: time.Millisecond})
			must(t, err)
			if l.LastSeq() != 0 {
				t.Fatalf("empty log has LastSeq %d", l.LastSeq())
			}
			appendN(t, l, 1, 100)
			must(t, l.Close())
			if _, err := l.Append(nil); !errors.Is(err, ErrClosed) {
				t.Fatalf("append after close: %v", err)
			}
			l, err = Open(dir, Options{Sync: p})
			must(t, err)
			defer l.Close()
			checkRecords(t, replayAll(t, l, 0), 1, 100)
			checkRecords(t, replayAll(t, l, 60), 60, 100)
			appendN(t, l, 101, 5)
			checkRecords(t, replayAll(t, l, 1), 1, 105)
		})
	}
}

func TestRotationAndTruncation(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{SegmentBytes: 200, Sync: SyncNone})
	must(t, err)
	appendN(t, l, 1, 50)
	st := l.Stats()
	if st.Segments < 5 {
		t.Fatalf("%d segments after 50 records of 200-byte segments", st.Segments)
	}
	checkRecords(t, replayAll(t, l, 0), 1, 50)
	checkRecords(t, replayAll(t, l, 33), 33, 50)
	must(t, l.TruncateBefore(30))
	got := replayAll(t, l, 0)
	if len(got) == 0 || got[0].seq > 30 || got[len(got)-1].seq != 50 {
		t.Fatalf("after TruncateBefore(30) replay covers %d..%d", got[0].seq, got[len(got)-1].seq)
	}
	if l.Stats().Segments >= st.Segments {
		t.Fatalf("TruncateBefore removed no segment (%d)", l.Stats().Segments)
	}
	must(t, l.Close())
	l, err = Open(dir, Options{SegmentBytes: 200})
	must(t, err)
	defer l.Close()
	appendN(t, l, 51, 3)
	got = replayAll(t, l, 48)
	checkRecords(t, got, 48, 53)
	// Truncating past the end keeps the current segment, and appends go on.
	must(t, l.TruncateBefore(1000))
	if l.Stats().Segments != 1 {
		t.Fatalf("%d segments left, want the current one", l.Stats().Segments)
	}
	appendN(t, l, 54, 1)
	got = replayAll(t, l, 0)
	if len(got) == 0 || got[len(got)-1] != (rec{54, "record-54"}) {
		t.Fatalf("replay after truncating everything = %+v", got)
	}
}

func lastSegment(t *testing.T, dir string) string {
	t.Helper()
	segs, err := listSegments(dir)
	must(t, err)
	return segs[len(segs)-1].path
}

func TestTornTail(t *testing.T) {
	cases := []struct {
		name string
		tear func(path string, size int64)
		keep int // whole records that survive, of 10
	}{
		{"cut mid payload", func(p string, n int64) { must(t, os.Truncate(p, n-3)) }, 9},
		{"cut mid frame", func(p string, n int64) { must(t, os.Truncate(p, n-len64("record-10")-5)) }, 9},
		{"zeros appended", func(p string, n int64) { appendBytes(t, p, make([]byte, 100)) }, 10},
		{"garbage appended", func(p string, n int64) { appendBytes(t, p, []byte("\x09\x00\x00\x00garbagegarbage!")) }, 10},
		{"flipped payload byte", func(p string, n int64) { flip(t, p, n-2) }, 9},
		{"header only", func(p string, n int64) { must(t, os.Truncate(p, headerSize)) }, 0},
		{"torn header", func(p string, n int64) { must(t, os.Truncate(p, 5)) }, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			l, err := Open(dir, Options{})
			must(t, err)
			appendN(t, l, 1, 10)
			must(t, l.Close())
			p := lastSegment(t, dir)
			st, err := os.Stat(p)
			must(t, err)
			c.tear(p, st.Size())

			l, err = Open(dir, Options{})
			must(t, err)
			got := replayAll(t, l, 0)
			checkRecords(t, got, 1, c.keep)
			appendN(t, l, c.keep+1, 3)
			must(t, l.Close())
			l, err = Open(dir, Options{})
			must(t, err)
			defer l.Close()
			checkRecords(t, replayAll(t, l, 0), 1, c.keep+3)
		})
	}
}

func len64(s string) int64 { return int64(len(s)) }

func appendBytes(t *testing.T, path string, b []byte) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	_, err = f.Write(b)
	must(t, err)
	must(t, f.Close())
}

func flip(t *testing.T, path string, off int64) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	must(t, err)
	b := []byte{0}
	_, err = f.ReadAt(b, off)
	must(t, err)
	b[0] ^= 0xff
	_, err = f.WriteAt(b, off)
	must(t, err)
	must(t, f.Close())
}

func TestCorruptMiddleSegmentFailsReplay(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{SegmentBytes: 100})
	must(t, err)
	appendN(t, l, 1, 20)
	must(t, l.Close())
	segs, err := listSegments(dir)
	must(t, err)
	flip(t, segs[1].path, headerSize+frameSize+1)
	l, err = Open(dir, Options{})
	must(t, err)
	defer l.Close()
	err = l.Replay(0, func(uint64, []byte) error { return nil })
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("replay over a damaged middle segment: %v, want ErrCorrupt", err)
	}
}

func TestMinSeq(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{MinSeq: 500})
	must(t, err)
	seq, err := l.Append([]byte("a"))
	must(t, err)
	if seq != 500 {
		t.Fatalf("first seq %d, want 500", seq)
	}
	must(t, l.Close())
	l, err = Open(dir, Options{MinSeq: 900})
	must(t, err)
	defer l.Close()
	seq, err = l.Append([]byte("b"))
	must(t, err)
	if seq != 900 {
		t.Fatalf("seq after MinSeq 900: %d", seq)
	}
	got := replayAll(t, l, 0)
	if len(got) != 2 || got[0] != (rec{500, "a"}) || got[1] != (rec{900, "b"}) {
		t.Fatalf("replay = %+v", got)
	}
}

func TestParseSyncPolicy(t *testing.T) {
	for _, p := range []SyncPolicy{SyncAlways, SyncInterval, SyncNone} {
		got, err := ParseSyncPolicy(p.String())
		must(t, err)
		if got != p {
			t.Fatalf("ParseSyncPolicy(%q) = %v", p, got)
		}
	}
	if _, err := ParseSyncPolicy("sometimes"); err == nil {
		t.Fatal("ParseSyncPolicy accepted sometimes")
	}
}

// TestConcurrentAppends hammers group commit: every acked seq is unique and replays with
// its own payload.
func TestConcurrentAppends(t *testing.T) {
	for _, p := range []SyncPolicy{SyncAlways, SyncInterval, SyncNone} {
		t.Run(p.String(), func(t *testing.T) {
			dir := t.TempDir()
			l, err := Open(dir, Options{Sync: p, SegmentBytes: 4 << 10, Interval: time.Millisecond})
			must(t, err)
			const workers, each = 8, 100
			var mu sync.Mutex
			acked := map[uint64]string{}
			var wg sync.WaitGroup
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range each {
						p := fmt.Sprintf("w%d-%d", w, i)
						seq, err := l.Append([]byte(p))
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						if old, dup := acked[seq]; dup {
							t.Errorf("seq %d acked for %s and %s", seq, old, p)
						}
						acked[seq] = p
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			st := l.Stats()
			t.Logf("%s: %d records in %d writes, %d fsyncs, %d segments", p, st.Records, st.Writes, st.Fsyncs, st.Segments)
			if st.Records != workers*each {
				t.Fatalf("Stats.Records = %d", st.Records)
			}
			must(t, l.Close())
			l, err = Open(dir, Options{})
			must(t, err)
			defer l.Close()
			got := replayAll(t, l, 0)
			if len(got) != workers*each {
				t.Fatalf("replayed %d records", len(got))
			}
			for i, r := range got {
				if r.seq != uint64(i+1) || acked[r.seq] != r.payload {
					t.Fatalf("record %d = %+v, acked %q", i, r, acked[r.seq])
				}
			}
		})
	}
}

const crashEnv = "PODIUM_WAL_CRASH_CHILD"

// TestCrashChild is the child half of TestCrashKeepsAckedRecords; it does nothing unless
// run by it. It appends from several goroutines until killed, printing each acked record.
func TestCrashChild(t *testing.T) {
	spec := os.Getenv(crashEnv)
	if spec == "" {
		t.Skip("run by TestCrashKeepsAckedRecords")
	}
	dir, policy, _ := strings.Cut(spec, "|")
	p, err := ParseSyncPolicy(policy)
	must(t, err)
	l, err := Open(dir, Options{Sync: p, SegmentBytes: 16 << 10, Interval: 2 * time.Millisecond})
	must(t, err)
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	for w := range 4 {
		go func() {
			for i := 0; ; i++ {
				payload := fmt.Sprintf("w%d-%d-%s", w, i, strings.Repeat("x", i%50))
				seq, err := l.Append([]byte(payload))
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(3)
				}
				mu.Lock()
				fmt.Fprintf(out, "%d %s\n", seq, payload)
				out.Flush() // the ack reaches the parent only after Append returned
				mu.Unlock()
			}
		}()
	}
	select {}
}

// TestCrashKeepsAckedRecords runs a child process that appends and acks records, kills it
// with SIGKILL mid-stream, reopens the log and checks that every acked record is there.
func TestCrashKeepsAckedRecords(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("child")
	}
	for _, p := range []SyncPolicy{SyncAlways, SyncInterval, SyncNone} {
		t.Run(p.String(), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "wal")
			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), crashEnv+"="+dir+"|"+p.String())
			stdout, err := cmd.StdoutPipe()
			must(t, err)
			cmd.Stderr = os.Stderr
			must(t, cmd.Start())
			acked := map[uint64]string{}
			sc := bufio.NewScanner(stdout)
			want := 1500
			if testing.Short() {
				want = 300
			}
			deadline := time.Now().Add(20 * time.Second)
			for sc.Scan() {
				seqStr, payload, _ := strings.Cut(sc.Text(), " ")
				seq, err := strconv.ParseUint(seqStr, 10, 64)
				must(t, err)
				acked[seq] = payload
				if len(acked) == want || time.Now().After(deadline) {
					must(t, cmd.Process.Signal(syscall.SIGKILL))
					break
				}
			}
			for sc.Scan() { // acks printed before the kill landed
				seqStr, payload, _ := strings.Cut(sc.Text(), " ")
				if seq, err := strconv.ParseUint(seqStr, 10, 64); err == nil && payload != "" {
					acked[seq] = payload
				}
			}
			_ = cmd.Wait()
			if len(acked) < 10 {
				t.Fatalf("the child acked only %d records", len(acked))
			}
			l, err := Open(dir, Options{})
			must(t, err)
			defer l.Close()
			got := map[uint64]string{}
			var prev uint64
			must(t, l.Replay(0, func(seq uint64, p []byte) error {
				if seq != prev+1 {
					return fmt.Errorf("replay jumped from %d to %d", prev, seq)
				}
				prev = seq
				got[seq] = string(p)
				return nil
			}))
			for seq, p := range acked {
				if got[seq] != p {
					t.Fatalf("acked record %d %q replayed as %q", seq, p, got[seq])
				}
			}
			t.Logf("%s: %d acked, %d replayed, %d segments", p, len(acked), len(got), l.Stats().Segments)
			seq, err := l.Append([]byte("after"))
			must(t, err)
			if seq != prev+1 {
				t.Fatalf("append after recovery got seq %d, want %d", seq, prev+1)
			}
		})
	}
}
