package cli

import (
	"bufio"
	"bytes"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// serverGCPercent is the garbage collector's GOGC for the processes that
// serve (serve, worker, and the bench's in-process server), unless GOGC is
// set. Measured with 'piperun bench http' (20,000 runs, 32 clients,
// --api-only), three interleaved pairs: 3,846–5,411 restores/s at 264–391
// CPU-µs per request with Go's default of 100, 5,309–6,539/s at 209–263
// µs with 400. The live heap is mostly the command cache and the
// projector's states, encoded (pointer-free, cheap to mark); what a
// collection costs is the requests' allocations while it runs and the
// sweeping after. The price is memory: the heap may grow to five times the
// live data instead of twice, within the soft memory limit tuneGC sets.
const serverGCPercent = 400

// tuneGC sets the collector of a serving process: GOGC serverGCPercent
// unless the environment sets GOGC, and, unless it sets GOMEMLIMIT, a soft
// memory limit of half the memory of the machine or of the process's
// control group, whichever is less, past which the runtime collects more
// often instead of growing (it is a target, not a cap: the live data may
// still exceed it). It returns what it set, for the log.
func tuneGC() (gogc string, limit int64) {
	gogc = "from GOGC"
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(serverGCPercent)
		gogc = strconv.Itoa(serverGCPercent)
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); set {
		return gogc, debug.SetMemoryLimit(-1)
	}
	if total := availableMemory(os.ReadFile); total > 0 {
		debug.SetMemoryLimit(total / 2)
		return gogc, total / 2
	}
	return gogc, debug.SetMemoryLimit(-1)
}

// logGC tunes the collector (tuneGC) and logs the outcome.
func logGC(log *slog.Logger) {
	gogc, limit := tuneGC()
	log.Info("garbage collector", "gogc", gogc, "soft_memory_limit", limitText(limit))
}

// limitText shows a memory limit in MiB, or "none".
func limitText(limit int64) string {
	if limit <= 0 || limit == math.MaxInt64 {
		return "none"
	}
	return strconv.FormatInt(limit>>20, 10) + " MiB"
}

// availableMemory is the smaller of the machine's memory (/proc/meminfo)
// and the limit of the process's control group (cgroup v2 memory.max or
// v1 memory.limit_in_bytes), or 0 when none can be read.
func availableMemory(read func(string) ([]byte, error)) int64 {
	var total int64
	if b, err := read("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 3 && f[0] == "MemTotal:" && f[2] == "kB" {
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil && kb > 0 && kb < math.MaxInt64/1024 {
					total = kb * 1024
				}
			}
		}
	}
	for _, p := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := read(p)
		if err != nil {
			continue
		}
		// "max" (v2) or a huge number (v1) means no limit.
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err == nil && n > 0 && (total == 0 || n < total) {
			total = n
		}
	}
	return total
}
