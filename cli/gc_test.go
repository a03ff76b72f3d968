package cli

import (
	"errors"
	"math"
	"os"
	"runtime/debug"
	"testing"
)

func TestAvailableMemory(t *testing.T) {
	const meminfo = "MemTotal:       24576000 kB\nMemFree:        1000 kB\n"
	files := func(m map[string]string) func(string) ([]byte, error) {
		return func(name string) ([]byte, error) {
			if s, ok := m[name]; ok {
				return []byte(s), nil
			}
			return nil, errors.New("no such file")
		}
	}
	for _, c := range []struct {
		name  string
		files map[string]string
		want  int64
	}{
		{"machine only", map[string]string{"/proc/meminfo": meminfo}, 24576000 * 1024},
		{"cgroup v2 without a limit", map[string]string{"/proc/meminfo": meminfo, "/sys/fs/cgroup/memory.max": "max\n"}, 24576000 * 1024},
		{"cgroup v2 limit", map[string]string{"/proc/meminfo": meminfo, "/sys/fs/cgroup/memory.max": "1073741824\n"}, 1 << 30},
		{"cgroup v1 no limit", map[string]string{"/proc/meminfo": meminfo, "/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n"}, 24576000 * 1024},
		{"cgroup v1 limit", map[string]string{"/proc/meminfo": meminfo, "/sys/fs/cgroup/memory/memory.limit_in_bytes": "536870912"}, 512 << 20},
		{"nothing readable", nil, 0},
		{"garbage", map[string]string{"/proc/meminfo": "MemTotal: lots kB\n", "/sys/fs/cgroup/memory.max": "-1"}, 0},
	} {
		if got := availableMemory(files(c.files)); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

func TestTuneGCLeavesTheEnvironmentsSettings(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))

	t.Setenv("GOGC", "123")
	t.Setenv("GOMEMLIMIT", "1GiB")
	debug.SetGCPercent(123)
	debug.SetMemoryLimit(1 << 30)
	if gogc, limit := tuneGC(); gogc != "from GOGC" || limit != 1<<30 {
		t.Errorf("with GOGC and GOMEMLIMIT set: %q, %d", gogc, limit)
	}
	if got := debug.SetGCPercent(123); got != 123 {
		t.Errorf("GOGC set in the environment, yet the percent became %d", got)
	}

	os.Unsetenv("GOGC")
	os.Unsetenv("GOMEMLIMIT")
	gogc, limit := tuneGC()
	if got := debug.SetGCPercent(100); gogc != "400" || got != serverGCPercent {
		t.Errorf("GOGC unset: %q, percent %d; want %d", gogc, got, serverGCPercent)
	}
	if want := availableMemory(os.ReadFile) / 2; want > 0 && (limit != want || debug.SetMemoryLimit(-1) != want) {
		t.Errorf("GOMEMLIMIT unset: limit %d, want half of %d", limit, 2*want)
	}
}
