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

// TestBatchReadsUnknownHeads commits, by hand, a batch of appends to
// streams the store has never seen (its write state forgotten, as after a
// start): each append's expected version is checked against its stream's
// real head, including empty streams and streams named twice in the batch.
func TestBatchReadsUnknownHeads(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	const streams = 39
	for i := range streams {
		if i%3 == 0 {
			continue // left empty
		}
		evs := make([]eventstore.EventData, i%5+1)
		for j := range evs {
			evs[j] = event(`{}`)
		}
		if _, _, err := s.Append(ctx, fmt.Sprintf("run-%02d", i), eventstore.NoStream, evs...); err != nil {
			t.Fatal(err)
		}
	}
	head := func(i int) int64 {
		if i%3 == 0 {
			return 0
		}
		return int64(i%5 + 1)
	}
	s.state.forget()

	var batch, right, wrong []*appendRequest
	for i := range streams {
		stream := fmt.Sprintf("run-%02d", i)
		if i%2 == 0 {
			r := request(ctx, stream, head(i), event(`{}`))
			right = append(right, r)
			batch = append(batch, r)
			if i%4 == 0 { // the same stream again, after the first
				r := request(ctx, stream, head(i)+1, event(`{}`))
				right = append(right, r)
				batch = append(batch, r)
			}
			continue
		}
		r := request(ctx, stream, head(i)+1, event(`{}`)) // one past the head
		wrong = append(wrong, r)
		batch = append(batch, r)
	}
	s.commitBatch(batch)
	for _, r := range right {
		if r.err != nil || r.version != r.expected+1 {
			t.Errorf("append to %q at %d = version %d, %v; want %d", r.stream, r.expected, r.version, r.err, r.expected+1)
		}
	}
	for _, r := range wrong {
		var ce *eventstore.ConcurrencyError
		if !errors.As(r.err, &ce) || ce.Actual != r.expected-1 {
			t.Errorf("append to %q at %d past its head: err = %v, want a ConcurrencyError at %d", r.stream, r.expected, r.err, r.expected-1)
		}
	}
	for i := range streams {
		want := head(i)
		switch {
		case i%4 == 0:
			want += 2
		case i%2 == 0:
			want++
		}
		if got := version(t, s, fmt.Sprintf("run-%02d", i)); got != want {
			t.Errorf("stream run-%02d at version %d, want %d", i, got, want)
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

// TestWriteStateFollowsOtherWriters checks that the writer's memory of
// stream versions and positions does not outlive a commit by another
// connection to the file: an append at the version the database holds
// succeeds, and one at the version remembered fails with the actual version.
func TestWriteStateFollowsOtherWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	a, b := open(t, path), open(t, path)
	defer a.Close()
	defer b.Close()
	appendShared(t, a, eventstore.NoStream, 1) // a remembers version 1
	pb := appendShared(t, b, 1, 2)
	conflictShared(t, a, 1, 2)
	if pa := appendShared(t, a, 2, 3); pa <= pb {
		t.Errorf("position %d after the other store's %d", pa, pb)
	}
	appendShared(t, a, eventstore.AnyVersion, 4)
	conflictShared(t, b, 3, 4)
}

// TestWriteStateNewConnection replaces the write connection, as database/sql
// does when one breaks, while another store appends: PRAGMA data_version of
// the new connection says nothing about what the old one saw.
func TestWriteStateNewConnection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	a, b := open(t, path), open(t, path)
	defer a.Close()
	defer b.Close()
	appendShared(t, a, eventstore.NoStream, 1)
	a.write.SetMaxIdleConns(0) // closes the idle connection
	a.write.SetMaxIdleConns(1)
	pb := appendShared(t, b, 1, 2)
	if pa := appendShared(t, a, 2, 3); pa <= pb {
		t.Errorf("position %d after the other store's %d", pa, pb)
	}
}

func appendShared(t *testing.T, s *Store, expected, want int64) (position int64) {
	t.Helper()
	v, pos, err := s.Append(context.Background(), "run-shared", expected, event(`{}`))
	if err != nil || v != want {
		t.Fatalf("append at %d = %d, %v; want %d", expected, v, err, want)
	}
	return pos
}

func conflictShared(t *testing.T, s *Store, expected, actual int64) {
	t.Helper()
	_, _, err := s.Append(context.Background(), "run-shared", expected, event(`{}`))
	var ce *eventstore.ConcurrencyError
	if !errors.As(err, &ce) || ce.Actual != actual {
		t.Fatalf("append at %d: err = %v, want a ConcurrencyError at %d", expected, err, actual)
	}
}

// TestWriteStateBackstop makes the writer's memory wrong behind its back, as
// a bug would: the database's constraints still refuse what it would write,
// and the writer recovers from the database.
func TestWriteStateBackstop(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	if _, _, err := s.Append(ctx, "run-1", eventstore.NoStream, event(`{}`), event(`{}`)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Append(ctx, "run-2", eventstore.NoStream, event(`{}`)); err != nil {
		t.Fatal(err)
	}

	// The writer goroutine is idle; the request channel orders these
	// writes before its next batch.
	s.state.versions["run-1"] = 1 // the stream is at 2
	_, _, err := s.Append(ctx, "run-1", 1, event(`{}`))
	var ce *eventstore.ConcurrencyError
	if !errors.As(err, &ce) || ce.Actual != 2 {
		t.Fatalf("append behind a stale version: err = %v, want a ConcurrencyError at 2", err)
	}
	if v, _, err := s.Append(ctx, "run-1", 2, event(`{}`)); err != nil || v != 3 {
		t.Fatalf("append at the actual version = %d, %v; want 3", v, err)
	}

	head, err := s.HeadPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.state.lastPosition = 1 // positions up to head are taken
	v, pos, err := s.Append(ctx, "run-2", 1, event(`{}`))
	if err != nil || v != 2 || pos != head+1 {
		t.Fatalf("append behind a stale position = version %d position %d, %v; want 2, %d", v, pos, err, head+1)
	}
	evs, err := s.ReadAll(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range evs {
		if e.Position != int64(i+1) {
			t.Fatalf("event %d at position %d", i, e.Position)
		}
	}
}

// TestPositionsAcrossPaths mixes batches the writer inserts with one
// statement and batches it redoes one append at a time (a duplicate id sends
// it there), across a reopen: positions keep rising by one, and
// AUTOINCREMENT's record of the last position keeps up with them.
func TestPositionsAcrossPaths(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	s := open(t, path)
	ctx := context.Background()
	dup := event(`{}`)
	for round := range 3 {
		batch := []*appendRequest{
			request(ctx, fmt.Sprintf("run-%d-a", round), eventstore.NoStream, event(`{}`), event(`{}`)),
			request(ctx, fmt.Sprintf("run-%d-b", round), eventstore.NoStream, event(`{}`)),
		}
		if round == 1 {
			batch = append(batch, request(ctx, "run-dup", eventstore.AnyVersion, dup), request(ctx, "run-dup", eventstore.AnyVersion, dup))
		}
		s.commitBatch(batch)
		if round == 1 && batch[3].err == nil {
			t.Fatal("second append of one id succeeded")
		}
		if _, _, err := s.Append(ctx, fmt.Sprintf("run-%d-c", round), eventstore.NoStream, event(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path)
	defer s.Close()
	if _, _, err := s.Append(ctx, "run-last", eventstore.NoStream, event(`{}`)); err != nil {
		t.Fatal(err)
	}
	evs, err := s.ReadAll(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := 3*4 + 1 + 1; len(evs) != want {
		t.Fatalf("%d events, want %d", len(evs), want)
	}
	for i, e := range evs {
		if e.Position != int64(i+1) {
			t.Fatalf("event %d at position %d", i, e.Position)
		}
	}
	var seq int64
	if err := s.read.QueryRowContext(ctx, `SELECT seq FROM sqlite_sequence WHERE name = 'events'`).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	if seq != int64(len(evs)) {
		t.Errorf("sqlite_sequence holds %d, last position is %d", seq, len(evs))
	}
}

// TestGather checks the writer's wait for the appends it expects: none when
// enough are queued or none are expected, at most the given time otherwise,
// and no longer than it takes them to arrive.
func TestGather(t *testing.T) {
	ctx := context.Background()
	s := &Store{requests: make(chan *appendRequest, 8)}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	queue := func(n int) {
		for range n {
			s.requests <- request(ctx, "run-1", eventstore.AnyVersion, event(`{}`))
		}
	}
	first := request(ctx, "run-1", eventstore.AnyVersion, event(`{}`))
	batch := make([]*appendRequest, 0, 4)

	queue(5)
	start := time.Now()
	if got := s.gather(append(batch[:0], first), 2, time.Hour, timer); len(got) != 4 {
		t.Errorf("gathered %d with 5 queued, want cap 4", len(got))
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("waited %v with enough queued", took)
	}
	for len(s.requests) > 0 {
		<-s.requests
	}

	const wait = 30 * time.Millisecond
	start = time.Now()
	if got := s.gather(append(batch[:0], first), 3, wait, timer); len(got) != 1 {
		t.Errorf("gathered %d with none coming, want 1", len(got))
	}
	if took := time.Since(start); took < wait {
		t.Errorf("waited %v for appends expected, want %v", took, wait)
	}

	go func() {
		time.Sleep(5 * time.Millisecond)
		queue(2)
	}()
	start = time.Now()
	if got := s.gather(append(batch[:0], first), 3, time.Hour, timer); len(got) != 3 {
		t.Errorf("gathered %d, want the 3 expected", len(got))
	}
	if took := time.Since(start); took > time.Minute {
		t.Errorf("waited %v for appends that came", took)
	}

	close(s.requests)
	if got := s.gather(append(batch[:0], first), 3, time.Hour, timer); len(got) != 1 {
		t.Errorf("gathered %d from a closed queue, want 1", len(got))
	}
}
