package projections_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/piperun/piperun/command"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/eventstore/memory"
	"github.com/piperun/piperun/projections"
)

// TestWaitFor checks that a wait ends when the read models reach its
// position and not before, that waits for later positions go on waiting,
// and that a wait whose context ends returns its error.
func TestWaitFor(t *testing.T) {
	ctx := context.Background()
	es := memory.New()
	svc := command.New(es)
	read := openRead(t, filepath.Join(t.TempDir(), "read.db"))
	create := func(name string) int64 {
		t.Helper()
		res, err := svc.CreateRun(ctx, domain.CreateRun{Name: name, Config: testConfig("x"), Actor: domain.Actor{Name: "alice"}})
		if err != nil {
			t.Fatal(err)
		}
		return res.Position
	}
	first, second := create("a"), create("b")
	third := second + 1
	wait := func(pos int64) <-chan error {
		done := make(chan error, 1)
		go func() { done <- read.WaitFor(ctx, pos) }()
		return done
	}
	w1, w2, w3 := wait(first), wait(second), wait(third)
	for _, w := range []<-chan error{w1, w2, w3} {
		select {
		case err := <-w:
			t.Fatalf("a wait ended before the read models moved: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := read.CatchUp(ctx, es); err != nil {
		t.Fatal(err)
	}
	for _, w := range []<-chan error{w1, w2} {
		mustEnd(t, w, "a wait for a position the read models reached")
	}
	select {
	case err := <-w3:
		t.Fatalf("the wait for position %d ended at %d: %v", third, read.Position(), err)
	case <-time.After(20 * time.Millisecond):
	}
	if err := read.WaitFor(ctx, second); err != nil {
		t.Fatalf("a wait for a position already reached: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if err := read.WaitFor(short, third+5); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a wait whose context ended: %v", err)
	}
	if got := create("c"); got != third {
		t.Fatalf("third event at %d, want %d", got, third)
	}
	if err := read.CatchUp(ctx, es); err != nil {
		t.Fatal(err)
	}
	mustEnd(t, w3, "the wait for the third event, once it was projected,")
}

// TestWaitForTimedOutLeaves checks that a wait whose context ends leaves
// the store's waiters at once (while the projector is stalled, every
// command's wait times out: kept until the position passed them, they
// piled up), and that the waits still under way, taken out of the middle
// of the heap around them, still end when their positions are reached.
func TestWaitForTimedOutLeaves(t *testing.T) {
	ctx := context.Background()
	es := memory.New()
	svc := command.New(es)
	read := openRead(t, filepath.Join(t.TempDir(), "read.db"))
	var last int64
	for _, name := range []string{"a", "b", "c", "d"} {
		res, err := svc.CreateRun(ctx, domain.CreateRun{Name: name, Config: testConfig("x"), Actor: domain.Actor{Name: "alice"}})
		if err != nil {
			t.Fatal(err)
		}
		last = res.Position
	}
	short, cancel := context.WithCancel(ctx)
	var timedOut, kept []<-chan error
	for i := range 60 {
		// Positions in no order, the kept ones among the others.
		pos := last - int64(i*7%4)
		c := short
		if i%5 == 0 {
			c = ctx
		}
		done := make(chan error, 1)
		go func() { done <- read.WaitFor(c, pos) }()
		if c == ctx {
			kept = append(kept, done)
		} else {
			timedOut = append(timedOut, done)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for projections.Waiting(read) != 60 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	for _, w := range timedOut {
		if err := <-w; !errors.Is(err, context.Canceled) {
			t.Fatalf("a wait whose context ended: %v", err)
		}
	}
	if n := projections.Waiting(read); n != len(kept) {
		t.Fatalf("%d waits held after %d timed out, want the %d under way", n, len(timedOut), len(kept))
	}
	if err := read.CatchUp(ctx, es); err != nil {
		t.Fatal(err)
	}
	for _, w := range kept {
		mustEnd(t, w, "a wait under way, once its position was projected,")
	}
	if n := projections.Waiting(read); n != 0 {
		t.Fatalf("%d waits held after all ended", n)
	}
}

// mustEnd fails the test unless wait w ends without error within 5 s.
func mustEnd(t *testing.T, w <-chan error, what string) {
	t.Helper()
	select {
	case err := <-w:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s did not end", what)
	}
}
