//go:build !unix

package projections_test

import "time"

// processCPU is not measured on this platform: cpu-µs/event reads 0.
func processCPU() time.Duration { return 0 }
