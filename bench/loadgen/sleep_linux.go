package loadgen

import (
	"runtime"
	"syscall"
	"time"
)

// prSetTimerSlack is PR_SET_TIMERSLACK from <linux/prctl.h>.
const prSetTimerSlack = 29

// lockPreciseThread wires the calling goroutine to its OS thread and lowers the thread's
// timer slack from the default 50 µs to 1 µs. The caller must never unlock it: when the
// goroutine exits, the runtime destroys the thread and its changed slack with it.
func lockPreciseThread() {
	runtime.LockOSThread()
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetTimerSlack, 1000, 0)
}

// sleepShort blocks the thread for about d with nanosleep(2), which wakes within tens of
// microseconds, where a Go timer on an idle process rounds up to the next millisecond
// (the netpoller waits in whole milliseconds). It may return early on a signal.
func sleepShort(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	_ = syscall.Nanosleep(&ts, nil)
}
