//go:build unix

package bench

import (
	"syscall"
	"time"
)

// processFaults is the number of page faults this process has taken that
// needed no disk read (first touches of memory, mostly), and the user and
// system split of its CPU time.
func processFaults() (minor int64, user, system time.Duration, ok bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0, 0, false
	}
	return ru.Minflt, time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano()), true
}
