package engine

import (
	"bytes"
	"os"
	"strconv"
	"time"
)

// idleGate tells the shadow workers whether the machine has had idle CPU lately, so that
// shadow work only uses what requests (and the machine's other tenants) leave idle. It
// reads the machine's CPU counters (/proc/stat) at most every idleWindow. Where they
// cannot be read, it is always open (the CPU budget still applies). It is not
// goroutine-safe: each worker owns one.
type idleGate struct {
	min         float64 // the idle share needed, 0..1; 0 disables the gate
	next        time.Time
	idle, total uint64
	isOpen      bool
	broken      bool
}

// idleWindow is how often the gate reads the counters: long enough for the kernel's 10 ms
// ticks to give a usable share on a small machine.
const idleWindow = 100 * time.Millisecond

func newIdleGate(min float64) *idleGate {
	g := &idleGate{min: min, isOpen: true}
	if min <= 0 {
		g.broken = true
		return g
	}
	g.idle, g.total, g.broken = readCPU()
	g.next = time.Now().Add(idleWindow)
	return g
}

// open reports whether at least min of the machine's CPU time was idle over the last
// window.
func (g *idleGate) open(now time.Time) bool {
	if g.broken || now.Before(g.next) {
		return g.isOpen || g.broken
	}
	idle, total, broken := readCPU()
	if broken {
		g.broken = true
		return true
	}
	if dt := total - g.total; dt > 0 {
		g.isOpen = float64(idle-g.idle)/float64(dt) >= g.min
	}
	g.idle, g.total, g.next = idle, total, now.Add(idleWindow)
	return g.isOpen
}

// readCPU returns the machine's idle (idle + iowait) and total CPU ticks from the first
// line of /proc/stat, and whether it could not.
func readCPU() (idle, total uint64, broken bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, true
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 5 || string(f[0]) != "cpu" {
		return 0, 0, true
	}
	for i, x := range f[1:] {
		v, err := strconv.ParseUint(string(x), 10, 64)
		if err != nil {
			return 0, 0, true
		}
		total += v
		if i == 3 || i == 4 { // idle, iowait
			idle += v
		}
	}
	return idle, total, false
}
