package sqlite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/piperun/piperun/eventstore"
)

func openTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "events.db"), Options{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func event(data string) eventstore.EventData {
	return eventstore.EventData{ID: uuid.NewString(), Type: "run.processed.v1", Data: []byte(data), Actor: "tester", Time: time.Now()}
}

func request(ctx context.Context, stream string, expected int64, events ...eventstore.EventData) *appendRequest {
	return &appendRequest{ctx: ctx, stream: stream, expected: expected, events: events, done: make(chan struct{})}
}

func version(t *testing.T, s *Store, stream string) int64 {
	t.Helper()
	v, err := s.StreamVersion(context.Background(), stream)
	if err != nil {
		t.Fatalf("version of %q: %v", stream, err)
	}
	return v
}

// TestBatchIsolatesAppends commits one batch by hand, so that its content is
// known: each append succeeds or fails on its own.
func TestBatchIsolatesAppends(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	existing := event(`{"existing":true}`)
	if _, _, err := s.Append(ctx, "run-c", eventstore.NoStream, existing); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	first := event(`{"first":true}`)

	ok := request(ctx, "run-a", eventstore.NoStream, first)
	dupInMulti := request(ctx, "run-b", eventstore.NoStream, event(`{}`), first) // second event reuses an id
	conflict := request(ctx, "run-c", eventstore.NoStream, event(`{}`))
	sameStreamAgain := request(ctx, "run-a", 1, event(`{"second":true}`)) // sees ok's write
	dupSingle := request(ctx, "run-d", eventstore.NoStream, existing)
	gone := request(cancelled, "run-e", eventstore.NoStream, event(`{}`))
	afterDup := request(ctx, "run-d", eventstore.NoStream, event(`{}`), event(`{}`))
	batch := []*appendRequest{ok, dupInMulti, conflict, sameStreamAgain, dupSingle, gone, afterDup}

	commits, changed := s.commits.Load(), s.Changed()
	s.commitBatch(batch)
	for _, r := range batch {
		select {
		case <-r.done:
		default:
			t.Fatalf("request on %q not done after its batch", r.stream)
		}
	}
	if got := s.commits.Load() - commits; got != 1 {
		t.Errorf("batch took %d commits, want 1", got)
	}
	select {
	case <-changed:
	default:
		t.Error("Changed not closed after the batch")
	}

	for _, r := range []*appendRequest{ok, sameStreamAgain, afterDup} {
		if r.err != nil {
			t.Errorf("append to %q at %d: %v", r.stream, r.expected, r.err)
		}
	}
	if ok.version != 1 || sameStreamAgain.version != 2 || afterDup.version != 2 {
		t.Errorf("versions %d, %d, %d, want 1, 2, 2", ok.version, sameStreamAgain.version, afterDup.version)
	}
	if !(ok.position < sameStreamAgain.position && sameStreamAgain.position < afterDup.position) {
		t.Errorf("positions %d, %d, %d are not in batch order", ok.position, sameStreamAgain.position, afterDup.position)
	}
	for _, r := range []*appendRequest{dupInMulti, dupSingle} {
		if r.err == nil || errors.Is(r.err, eventstore.ErrConcurrency) || errors.Is(r.err, eventstore.ErrUnavailable) {
			t.Errorf("append of a stored id to %q: err = %v, want a duplicate id error", r.stream, r.err)
		}
	}
	var ce *eventstore.ConcurrencyError
	if !errors.As(conflict.err, &ce) || ce.Actual != 1 {
		t.Errorf("conflicting append: err = %v, want a ConcurrencyError at 1", conflict.err)
	}
	if !errors.Is(gone.err, context.Canceled) {
		t.Errorf("append of a cancelled caller: err = %v, want context.Canceled", gone.err)
	}
	for stream, want := range map[string]int64{"run-a": 2, "run-b": 0, "run-c": 1, "run-d": 2, "run-e": 0} {
		if got := version(t, s, stream); got != want {
			t.Errorf("stream %q at version %d, want %d", stream, got, want)
		}
	}
}

// TestDiskFull caps the database at its current size, which SQLite reports
// exactly as a full disk.
func TestDiskFull(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	var pages int64
	if err := s.write.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := s.write.ExecContext(ctx, fmt.Sprintf("PRAGMA max_page_count = %d", pages)); err != nil {
		t.Fatal(err)
	}
	big := event(fmt.Sprintf(`{"pad":%q}`, bytes.Repeat([]byte("x"), 1<<20)))
	small := request(ctx, "run-small", eventstore.NoStream, event(`{}`))
	large := request(ctx, "run-big", eventstore.NoStream, big)
	s.commitBatch([]*appendRequest{small, large})
	for _, r := range []*appendRequest{small, large} {
		// The failed statement may have rolled back the whole transaction,
		// so the small append shares the failure rather than a false success.
		if !errors.Is(r.err, eventstore.ErrUnavailable) || errors.Is(r.err, eventstore.ErrConcurrency) {
			t.Errorf("append to %q on a full disk: err = %v, want ErrUnavailable", r.stream, r.err)
		}
	}
	for _, stream := range []string{"run-small", "run-big"} {
		if v := version(t, s, stream); v != 0 {
			t.Errorf("stream %q at version %d after a failed batch", stream, v)
		}
	}
	if _, _, err := s.Append(ctx, "run-big", eventstore.NoStream, big); !errors.Is(err, eventstore.ErrUnavailable) {
		t.Errorf("Append on a full disk: err = %v, want ErrUnavailable", err)
	}

	// Space comes back: the store goes on without a restart.
	if _, err := s.write.ExecContext(ctx, "PRAGMA max_page_count = 1073741823"); err != nil {
		t.Fatal(err)
	}
	if v, _, err := s.Append(ctx, "run-big", eventstore.NoStream, big); err != nil || v != 1 {
		t.Errorf("Append after space came back = %d, %v", v, err)
	}
}

// TestGroupCommit checks that concurrent appends share commits.
func TestGroupCommit(t *testing.T) {
	const writers, appends = 64, 10
	s := openTest(t)
	commits := s.commits.Load()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			stream := fmt.Sprintf("run-%d", w)
			for v := range int64(appends) {
				if _, _, err := s.Append(context.Background(), stream, v, event(`{}`)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n := s.commits.Load() - commits
	t.Logf("%d appends in %d commits", writers*appends, n)
	if n > writers*appends/2 {
		t.Errorf("%d appends took %d commits, want at most %d", writers*appends, n, writers*appends/2)
	}
}

// TestCloseFinishesQueuedAppends closes the store under load: each Append
// either reports success, and its event survives, or fails as unavailable.
func TestCloseFinishesQueuedAppends(t *testing.T) {
	const writers = 32
	path := filepath.Join(t.TempDir(), "events.db")
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		acked = make(map[string]int64) // stream -> last acknowledged version
		wg    sync.WaitGroup
	)
	changed := s.Changed()
	for w := range writers {
		wg.Go(func() {
			stream := fmt.Sprintf("run-%d", w)
			for v := int64(0); ; v++ {
				_, _, err := s.Append(context.Background(), stream, v, event(`{}`))
				if err != nil {
					if !errors.Is(err, eventstore.ErrUnavailable) {
						t.Errorf("append to %q during Close: %v", stream, err)
					}
					return
				}
				mu.Lock()
				acked[stream] = v + 1
				mu.Unlock()
			}
		})
	}
	<-changed // some appends are committed and more are queued
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	s = open(t, path)
	defer s.Close()
	for w := range writers {
		stream := fmt.Sprintf("run-%d", w)
		want := acked[stream]
		if got := version(t, s, stream); got != want {
			t.Errorf("stream %q at version %d after reopen, %d appends acknowledged", stream, got, want)
		}
	}
}

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	return s
}
