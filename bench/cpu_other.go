//go:build !unix

package bench

import "time"

// processFaults is not measured on this platform.
func processFaults() (int64, time.Duration, time.Duration, bool) { return 0, 0, 0, false }
