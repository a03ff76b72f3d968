package syncbuf_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/piperun/piperun/internal/syncbuf"
)

// TestConcurrentWritesAndReads writes from several goroutines while
// reading (the race detector checks the locking) and then finds every
// write whole.
func TestConcurrentWritesAndReads(t *testing.T) {
	var b syncbuf.Buffer
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				_, _ = b.Write([]byte("line\n"))
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	if got := strings.Count(b.String(), "line\n"); got != 800 {
		t.Fatalf("%d lines, want 800", got)
	}
}
