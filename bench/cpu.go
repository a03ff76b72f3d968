package bench

import "time"

// processCPU is the user and system CPU time this process has used, which
// tells a benchmark's own cost apart from waiting for a core on a busy
// machine (false where it cannot be measured).
func processCPU() (time.Duration, bool) {
	_, user, system, ok := processFaults()
	return user + system, ok
}
