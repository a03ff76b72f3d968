package eventstore

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Stream versions start at 1: the first event of a stream has version 1.
// ExpectedVersion values below 1 have special meanings.
const (
	// NoStream expects the stream not to exist yet (no event appended).
	NoStream int64 = 0
	// AnyVersion appends whatever the stream's current version is. It is
	// meant for streams with a single writer (user accounts, log imports),
	// never for aggregate decisions.
	AnyVersion int64 = -1
)

// ErrConcurrency is the root of every expected-version failure. Match it with
// errors.Is; errors.As with *ConcurrencyError gives the details.
var ErrConcurrency = errors.New("eventstore: wrong expected version")

// ErrNotFound is returned for reads of a stream or snapshot that does not
// exist. ReadStream of a missing stream returns an empty slice, not this.
var ErrNotFound = errors.New("eventstore: not found")

// ErrUnavailable wraps storage failures the caller can do nothing about but
// wait (disk full, read-only file system, database locked for too long).
// Handlers map it to 503.
var ErrUnavailable = errors.New("eventstore: storage unavailable")

// ConcurrencyError reports an append whose expected version did not match.
type ConcurrencyError struct {
	Stream   string
	Expected int64
	Actual   int64 // -1 when the adapter cannot tell
}

func (e *ConcurrencyError) Error() string {
	return fmt.Sprintf("append to %q: expected version %d, stream is at %d: %v", e.Stream, e.Expected, e.Actual, ErrConcurrency)
}

// Is makes errors.Is(err, ErrConcurrency) true for a *ConcurrencyError.
func (e *ConcurrencyError) Is(target error) bool { return target == ErrConcurrency }

// EventData is an event to append. ID must be unique across the store (a
// UUID); consumers use it to recognise a redelivered event.
type EventData struct {
	ID    string
	Type  string // versioned name, e.g. "run.restored.v1"
	Data  []byte // JSON
	Actor string // who caused it: a user name, or "system:<component>"
	Time  time.Time
}

// Event is a stored event.
type Event struct {
	ID       string
	Stream   string
	Type     string
	Version  int64 // position in its stream, from 1
	Position int64 // position in the global log, from 1, strictly increasing
	Data     []byte
	Actor    string
	Time     time.Time
}

// Snapshot is a serialized aggregate state as of a stream version. Snapshots
// are a cache: losing one only makes the next load slower.
type Snapshot struct {
	Stream  string
	Version int64
	Data    []byte
}

// Store is the port every adapter implements. All methods are safe for
// concurrent use. Every method takes ctx first and honours its cancellation.
type Store interface {
	// Append writes events to stream atomically if the stream's current
	// version equals expected (NoStream for a new stream, AnyVersion to skip
	// the check). It returns the stream version and global position of the
	// last event written. A mismatch returns a *ConcurrencyError and writes
	// nothing. When Append returns nil the events are durable. Calls that
	// ValidateAppend rejects fail; a zero EventData.Time is replaced by the
	// time of the append.
	Append(ctx context.Context, stream string, expected int64, events ...EventData) (version, position int64, err error)

	// ReadStream returns the events of stream with Version >= from, in
	// order, at most limit of them (limit <= 0: all).
	ReadStream(ctx context.Context, stream string, from int64, limit int) ([]Event, error)

	// StreamVersion returns the stream's current version (0 if absent).
	StreamVersion(ctx context.Context, stream string) (int64, error)

	// ReadAll returns events of the global log with Position > after, in
	// position order, at most limit (limit <= 0 means an adapter default).
	// It returns fewer than limit only when no more events follow: Tail
	// takes a short page to mean it has caught up.
	ReadAll(ctx context.Context, after int64, limit int) ([]Event, error)

	// HeadPosition returns the position of the last event in the global log
	// (0 when empty).
	HeadPosition(ctx context.Context) (int64, error)

	// Changed returns a channel that is closed the next time this process
	// appends an event. Appends by other processes are not signalled: tail
	// readers also poll (see Tail).
	Changed() <-chan struct{}

	// SaveSnapshot stores a snapshot, replacing an older one of the stream.
	SaveSnapshot(ctx context.Context, s Snapshot) error
	// LoadSnapshot returns the newest snapshot of stream or ErrNotFound.
	LoadSnapshot(ctx context.Context, stream string) (Snapshot, error)

	// Close releases the store's resources.
	Close() error
}
