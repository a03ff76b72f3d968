package esdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/piperun/piperun/eventstore"
)

// defaultReadAllLimit caps ReadAll when the caller passes limit <= 0.
const defaultReadAllLimit = 1000

// headPage is how many events of $all HeadPosition reads at a time while it
// walks back past system and snapshot events.
const headPage = 100

// errClosed is returned by every method of a closed Store.
var errClosed = errors.New("esdb: store is closed")

// Options configures OpenWith. The zero value is what Open uses.
type Options struct {
	// StreamPrefixes narrows the global log (ReadAll, HeadPosition, Changed)
	// to streams with one of these prefixes, e.g. "run-" and "user-". Empty:
	// every stream except system ($...) and snapshot streams.
	StreamPrefixes []string
}

// Store is the EventStoreDB eventstore.Store. It is safe for concurrent use.
type Store struct {
	cfg  *esdb.Configuration
	opts Options

	mu      sync.Mutex
	cur     *conn
	closed  bool
	changed chan struct{}

	// ops is held shared by every call and exclusively by Close, so that
	// Close waits for the callers in progress.
	ops sync.RWMutex

	// capped records the snapshot streams whose $maxCount this process has
	// set, to skip the metadata write on later saves.
	capped sync.Map

	stopWatch context.CancelFunc
	watchDone chan struct{}
}

// conn is one client and what the store has learnt about it.
//
// The v4.2.0 client serves every call through one connection goroutine that
// ignores contexts: while it rediscovers the server, calls wait for it, and
// when rediscovery fails (MaxDiscoverAttempts, default 10) it exits for good,
// leaving the calls queued behind it blocked forever and failing later calls
// with ErrorCodeConnectionClosed. So the store runs each call in a goroutine
// that the caller can leave (its ctx ends, or the client is found dead), and
// replaces a dead client with a new one.
type conn struct {
	client  *esdb.Client
	dead    chan struct{} // closed once the client has given up
	once    sync.Once
	running sync.WaitGroup // calls inside the client
}

func newConn(c *esdb.Client) *conn { return &conn{client: c, dead: make(chan struct{})} }

// Open connects to the EventStoreDB server at url, a connection string such
// as "esdb://localhost:2113?tls=false", and checks that it answers.
func Open(ctx context.Context, url string) (*Store, error) {
	return OpenWith(ctx, url, Options{})
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, url string, opts Options) (*Store, error) {
	cfg, err := esdb.ParseConnectionString(url)
	if err != nil {
		return nil, fmt.Errorf("parse EventStoreDB connection string: %w", err)
	}
	// Every failure reaches the caller as an error; the client's own log
	// lines would repeat them.
	cfg.Logger = esdb.NoopLogging()
	client, err := esdb.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to EventStoreDB at %s: %w", cfg.Address, err)
	}
	s := &Store{cfg: cfg, opts: opts, cur: newConn(client), changed: make(chan struct{}), watchDone: make(chan struct{})}
	watchCtx, cancel := context.WithCancel(context.Background())
	s.stopWatch = cancel
	// The client connects lazily: a first read proves the server is there.
	if _, err := s.HeadPosition(ctx); err != nil {
		close(s.watchDone)
		_ = s.Close()
		return nil, fmt.Errorf("connect to EventStoreDB at %s: %w", cfg.Address, err)
	}
	go s.watch(watchCtx)
	return s, nil
}

// call runs fn with the current client and returns its error, translated
// (see translate). It returns early, leaving fn to finish on its own, when
// ctx ends or the client gives up (see conn); fn's results must then be
// ignored.
func (s *Store) call(ctx context.Context, op string, fn func(c *esdb.Client) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	s.ops.RLock()
	defer s.ops.RUnlock()
	s.mu.Lock()
	cn, closed := s.cur, s.closed
	s.mu.Unlock()
	if closed {
		return fmt.Errorf("%s: %w", op, errClosed)
	}
	done := make(chan error, 1)
	cn.running.Add(1)
	go func() {
		defer cn.running.Done()
		err := fn(cn.client)
		done <- err // first, so that this call's caller gets the cause
		if err != nil && gaveUp(err) {
			s.bury(cn)
		}
	}()
	select {
	case err := <-done:
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			// The client reports a cancelled call as a gRPC status, which
			// errors.Is does not match with context.Canceled.
			return fmt.Errorf("%s: %w", op, ctx.Err())
		}
		return translate(op, err)
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", op, ctx.Err())
	case <-cn.dead:
		return fmt.Errorf("%s: %w: the EventStoreDB client gave up connecting", op, eventstore.ErrUnavailable)
	}
}

// bury marks cn dead, releasing the callers blocked in it, and gives the
// store a new client, so that a server that comes back is used again. The
// dead client is not closed: closing it would make the calls still blocked
// in it panic (they are sending on its request channel).
func (s *Store) bury(cn *conn) {
	cn.once.Do(func() { close(cn.dead) })
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.cur != cn {
		return
	}
	if c, err := esdb.NewClient(s.cfg); err == nil {
		s.cur = newConn(c)
	}
}

// Append implements eventstore.Store. The server checks the expected
// revision and writes the events atomically; it answers a mismatch with
// WrongExpectedVersion, which the client reports as an *esdb.Error with
// ErrorCodeWrongExpectedVersion.
func (s *Store) Append(ctx context.Context, stream string, expected int64, events ...eventstore.EventData) (version, position int64, err error) {
	if err := eventstore.ValidateAppend(stream, expected, events); err != nil {
		return 0, 0, err
	}
	if err := checkStreamName(stream); err != nil {
		return 0, 0, err
	}
	data, err := toEventData(stream, events, time.Now())
	if err != nil {
		return 0, 0, err
	}
	var v, p int64
	err = s.call(ctx, fmt.Sprintf("append to %q", stream), func(c *esdb.Client) error {
		res, err := c.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: expectedRevision(expected)}, data...)
		if isWrongExpectedVersion(err) {
			return &eventstore.ConcurrencyError{Stream: stream, Expected: expected, Actual: actualVersion(err)}
		}
		if err != nil {
			return err
		}
		v = versionOf(res.NextExpectedVersion)
		// The server reports the log position of the append's last event as
		// its commit position. It reports none (zero) when the append was a
		// retry it recognised by the event ids; then the last event tells.
		if res.CommitPosition != 0 || res.PreparePosition != 0 {
			p, err = positionOf(res.CommitPosition)
			return err
		}
		last, err := readStream(ctx, c, stream, esdb.Revision(res.NextExpectedVersion), 1)
		if err != nil {
			return fmt.Errorf("read back the last event: %w", err)
		}
		if len(last) == 0 {
			return fmt.Errorf("event %d missing after the append", v)
		}
		p = last[0].Position
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	s.signal()
	return v, p, nil
}

// SaveSnapshot implements eventstore.Store: the snapshot is appended to the
// stream "snapshot-<stream>", whose $maxCount of 1 lets the server drop the
// older ones.
func (s *Store) SaveSnapshot(ctx context.Context, snap eventstore.Snapshot) error {
	stream := snapshotPrefix + snap.Stream
	meta, err := json.Marshal(snapshotMeta{Version: snap.Version})
	if err != nil {
		return fmt.Errorf("save snapshot of %q: %w", snap.Stream, err)
	}
	return s.call(ctx, fmt.Sprintf("save snapshot of %q", snap.Stream), func(c *esdb.Client) error {
		if _, done := s.capped.Load(stream); !done {
			var m esdb.StreamMetadata
			m.SetMaxCount(1)
			// Written once per stream: NoStream fails harmlessly when another
			// process (or an earlier run) already set it.
			_, err := c.SetStreamMetadata(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}}, m)
			if err != nil && !isWrongExpectedVersion(err) {
				return fmt.Errorf("set $maxCount: %w", err)
			}
			s.capped.Store(stream, true)
		}
		ev := esdb.EventData{EventID: uuid.New(), EventType: snapshotType, ContentType: contentType(snap.Data), Data: snap.Data, Metadata: meta}
		_, err := c.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Any{}}, ev)
		return err
	})
}

// LoadSnapshot implements eventstore.Store: the last event of the snapshot
// stream, or eventstore.ErrNotFound.
func (s *Store) LoadSnapshot(ctx context.Context, stream string) (eventstore.Snapshot, error) {
	op := fmt.Sprintf("load snapshot of %q", stream)
	var last *esdb.RecordedEvent
	err := s.call(ctx, op, func(c *esdb.Client) (err error) {
		last, err = lastOf(ctx, c, snapshotPrefix+stream)
		return err
	})
	if err != nil {
		return eventstore.Snapshot{}, err
	}
	if last == nil {
		return eventstore.Snapshot{}, fmt.Errorf("%s: %w", op, eventstore.ErrNotFound)
	}
	var meta snapshotMeta
	if err := json.Unmarshal(last.UserMetadata, &meta); err != nil {
		return eventstore.Snapshot{}, fmt.Errorf("%s: decode metadata: %w", op, err)
	}
	return eventstore.Snapshot{Stream: stream, Version: meta.Version, Data: last.Data}, nil
}

// Close implements eventstore.Store. It stops the subscription and waits for
// the callers in progress. The client is closed once no call is inside it:
// at once, or later if a caller left a call behind (see conn).
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.stopWatch()
	<-s.watchDone
	s.ops.Lock()
	cn := s.cur
	s.ops.Unlock()
	idle := make(chan struct{})
	go func() {
		cn.running.Wait()
		close(idle)
	}()
	select {
	case <-idle:
		return cn.client.Close()
	case <-cn.dead:
		return nil
	default:
	}
	go func() {
		select {
		case <-idle:
			_ = cn.client.Close()
		case <-cn.dead:
		}
	}()
	return nil
}

var _ eventstore.Store = (*Store)(nil)
