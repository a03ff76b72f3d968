//go:build !unix

package bench

import "time"

// processCPU is not measured on this platform.
func processCPU() (time.Duration, bool) { return 0, false }

// processFaults is not measured on this platform.
func processFaults() (int64, time.Duration, time.Duration, bool) { return 0, 0, 0, false }
