//go:build !linux

package loadgen

import "time"

// lockPreciseThread does nothing outside Linux.
func lockPreciseThread() {}

// sleepShort falls back to time.Sleep outside Linux.
func sleepShort(d time.Duration) { time.Sleep(d) }
