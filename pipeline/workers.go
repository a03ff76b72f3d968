package pipeline

import "runtime"

// Workers resolves a processing.num_workers setting: n itself when
// positive, else (0, VAST's null) one less than the machine's cores, at
// least one.
func Workers(n int) int {
	if n > 0 {
		return n
	}
	return max(1, runtime.NumCPU()-1)
}

// WorkersIO resolves processing.num_workers_io: n itself when positive,
// else (0, null) as many as Workers(numWorkers).
func WorkersIO(n, numWorkers int) int {
	if n > 0 {
		return n
	}
	return Workers(numWorkers)
}
