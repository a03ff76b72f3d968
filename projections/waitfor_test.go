package projections_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/piperun/piperun/app"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/eventstore/memory"
)

// TestWaitFor checks that a wait ends when the read models reach its
// position and not before, that waits for later positions go on waiting,
// and that a wait whose context ends returns its error.
func TestWaitFor(t *testing.T) {
	ctx := context.Background()
	es := memory.New()
	svc := app.New(es)
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
		select {
		case err := <-w:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a wait for a position the read models reached did not end")
		}
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
	select {
	case err := <-w3:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the wait for the third event did not end once it was projected")
	}
}
