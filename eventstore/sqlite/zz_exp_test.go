package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
)

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestZZExp(t *testing.T) {
	if os.Getenv("EXP") == "" {
		t.Skip()
	}
	for _, v7 := range []bool{false, true} {
		s, err := Open(context.Background(), filepath.Join(t.TempDir(), "e.db"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if os.Getenv("NOCKPT") != "" {
			s.write.Exec("PRAGMA wal_autocheckpoint=0")
		}
		const N, W = 20000, 64
		var next atomic.Int64
		c0, w0 := cpuNow(), time.Now()
		var wg sync.WaitGroup
		for w := range W {
			wg.Go(func() {
				stream := fmt.Sprintf("run-%d-%s", w, uuid.NewString())
				for v := int64(0); next.Add(1) <= N; v++ {
					e := benchEvent()
					if v7 {
						e.ID = uuid.Must(uuid.NewV7()).String()
					}
					if _, _, err := s.Append(context.Background(), stream, v, e); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		cpu, wall := cpuNow()-c0, time.Since(w0)
		var busy, log, ckpt int
		s.write.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &ckpt)
		commits := s.commits.Load()
		var ps int
		s.write.QueryRow("PRAGMA page_size").Scan(&ps)
		t.Logf("page size %d", ps)
		t.Logf("v7=%v: %.0f appends/s wall, cpu %.1fµs/append, %d commits, %.1f frames/commit", v7, N/wall.Seconds(), float64(cpu.Microseconds())/N, commits, float64(log)/float64(commits))
		if st, err := os.Stat(s.path + "-wal"); err == nil {
			t.Logf("wal size %.1f MB", float64(st.Size())/1e6)
		}
		s.Close()
	}
}
