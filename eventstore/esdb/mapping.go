package esdb

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/piperun/piperun/eventstore"
)

// snapshotPrefix names the stream that holds a stream's snapshots. Those
// streams are capped at one event ($maxCount) and hidden from the global log.
const snapshotPrefix = "snapshot-"

// snapshotType is the event type of a snapshot in its snapshot stream.
const snapshotType = "piperun.snapshot.v1"

// expectedRevision maps a port expected version to the client's expected
// revision. The server checks it atomically with the append.
func expectedRevision(expected int64) esdb.ExpectedRevision {
	switch {
	case expected == eventstore.AnyVersion:
		return esdb.Any{}
	case expected == eventstore.NoStream:
		return esdb.NoStream{}
	default:
		return esdb.Revision(uint64(expected - 1))
	}
}

// versionOf maps an EventStoreDB stream revision (from 0) to a stream
// version (from 1).
func versionOf(revision uint64) int64 { return int64(revision) + 1 }

// readFrom maps the first stream version to read to the client's start of
// a forward stream read.
func readFrom(from int64) esdb.StreamPosition {
	if from <= 1 {
		return esdb.Start{}
	}
	return esdb.Revision(uint64(from - 1))
}

// positionOf maps a commit position of $all to a global position. The +1
// keeps 0 free for "before the first event": the first event of a fresh
// server may have commit position 0.
//
// It relies on the server giving each event written outside an explicit
// transaction (every gRPC append) a commit position equal to its own
// prepare position, so that commit positions are distinct and increase along
// $all even within one multi-event append.
func positionOf(commit uint64) (int64, error) {
	if commit >= math.MaxInt64 {
		return 0, fmt.Errorf("commit position %d does not fit a global position", commit)
	}
	return int64(commit) + 1, nil
}

// cursorAfter returns where a forward read of $all must start to see the
// events with global position > after. The read is inclusive, so the event
// at the cursor itself is skipped by the caller (see beyond). A position is
// always one of an event (commit == prepare, see positionOf).
func cursorAfter(after int64) (esdb.AllPosition, *esdb.Position) {
	if after <= 0 {
		return esdb.Start{}, nil
	}
	p := esdb.Position{Commit: uint64(after - 1), Prepare: uint64(after - 1)}
	return p, &p
}

// beyond reports whether p comes after cursor in $all order (commit, then
// prepare). A nil cursor is the start of the log.
func beyond(p esdb.Position, cursor *esdb.Position) bool {
	if cursor == nil {
		return true
	}
	if p.Commit != cursor.Commit {
		return p.Commit > cursor.Commit
	}
	return p.Prepare > cursor.Prepare
}

// inGlobalLog reports whether an event of $all belongs to the port's global
// log: not a system event or stream ($-prefixed, which includes the
// $$-metadata streams), not a snapshot stream, and, when prefixes are given,
// in a stream with one of them.
func inGlobalLog(prefixes []string, stream, eventType string) bool {
	if strings.HasPrefix(stream, "$") || strings.HasPrefix(eventType, "$") || strings.HasPrefix(stream, snapshotPrefix) {
		return false
	}
	if len(prefixes) == 0 {
		return true
	}
	for _, p := range prefixes {
		if strings.HasPrefix(stream, p) {
			return true
		}
	}
	return false
}

// subscriptionFilter is the server-side filter of the $all subscription
// behind Changed. It may let through more than inGlobalLog (snapshot
// events); a spurious signal only costs a tail reader one empty read.
func subscriptionFilter(prefixes []string) *esdb.SubscriptionFilter {
	if len(prefixes) == 0 {
		return esdb.ExcludeSystemEventsFilter()
	}
	return &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: prefixes}
}

// checkStreamName refuses the names the global log would hide.
func checkStreamName(stream string) error {
	switch {
	case strings.HasPrefix(stream, "$"):
		return fmt.Errorf("append to %q: names starting with $ are EventStoreDB system streams", stream)
	case strings.HasPrefix(stream, snapshotPrefix):
		return fmt.Errorf("append to %q: names starting with %q are reserved for snapshots", stream, snapshotPrefix)
	}
	return nil
}

// eventMeta is the JSON metadata of every event this adapter writes.
type eventMeta struct {
	Actor string    `json:"actor,omitempty"`
	Time  time.Time `json:"time"`
}

// snapshotMeta is the JSON metadata of a snapshot event.
type snapshotMeta struct {
	Version int64 `json:"version"`
}

// toEventData maps the port's events to the client's. EventStoreDB requires
// a UUID as event id (it deduplicates retried appends by it), so an id that
// does not parse as one is refused. A zero time becomes now.
func toEventData(stream string, events []eventstore.EventData, now time.Time) ([]esdb.EventData, error) {
	out := make([]esdb.EventData, len(events))
	for i, e := range events {
		id, err := uuid.Parse(e.ID)
		if err != nil {
			return nil, fmt.Errorf("append to %q: event id %q is not a UUID, which EventStoreDB requires: %w", stream, e.ID, err)
		}
		t := e.Time
		if t.IsZero() {
			t = now
		}
		meta, err := json.Marshal(eventMeta{Actor: e.Actor, Time: t})
		if err != nil {
			return nil, fmt.Errorf("append to %q: encode metadata of event %s: %w", stream, e.ID, err)
		}
		out[i] = esdb.EventData{EventID: id, EventType: e.Type, ContentType: contentType(e.Data), Data: e.Data, Metadata: meta}
	}
	return out, nil
}

// contentType marks JSON data as such, so that the server's projections and
// UI can read it; anything else is stored as binary.
func contentType(data []byte) esdb.ContentType {
	if json.Valid(data) {
		return esdb.ContentTypeJson
	}
	return esdb.ContentTypeBinary
}

// toEvent maps a recorded event to the port's. Events written by other
// tools may lack our metadata: their actor is empty and their time is the
// server's creation date.
func toEvent(r *esdb.RecordedEvent) (eventstore.Event, error) {
	pos, err := positionOf(r.Position.Commit)
	if err != nil {
		return eventstore.Event{}, fmt.Errorf("event %s of %q: %w", r.EventID, r.StreamID, err)
	}
	e := eventstore.Event{
		ID:       r.EventID.String(),
		Stream:   r.StreamID,
		Type:     r.EventType,
		Version:  versionOf(r.EventNumber),
		Position: pos,
		Data:     r.Data,
		Time:     r.CreatedDate,
	}
	var meta eventMeta
	if json.Unmarshal(r.UserMetadata, &meta) == nil {
		e.Actor = meta.Actor
		if !meta.Time.IsZero() {
			e.Time = meta.Time
		}
	}
	return e, nil
}

// wrongVersion matches the message of the client's wrong-expected-version
// error. v4.2.0 keeps the server's current revision only in this text:
// "wrong expected version: expecting '<expected>' but got '<current>'",
// where current is a revision or "no_stream".
var wrongVersion = regexp.MustCompile(`expecting '[^']*' but got '([^']*)'`)

// isWrongExpectedVersion reports whether err is the client's
// expected-revision failure.
func isWrongExpectedVersion(err error) bool {
	var ee *esdb.Error
	return errors.As(err, &ee) && ee.Code() == esdb.ErrorCodeWrongExpectedVersion
}

// actualVersion reads the stream's version from a wrong-expected-version
// error, or -1 when the message does not say.
func actualVersion(err error) int64 {
	m := wrongVersion.FindStringSubmatch(err.Error())
	if m == nil {
		return -1
	}
	if m[1] == "no_stream" {
		return 0
	}
	rev, perr := strconv.ParseUint(m[1], 10, 63)
	if perr != nil {
		return -1
	}
	return versionOf(rev)
}

// isNotFound reports the client's answer to a read of a missing stream: the
// read's Recv returns an *esdb.Error with ErrorCodeResourceNotFound.
func isNotFound(err error) bool {
	var ee *esdb.Error
	return errors.As(err, &ee) && ee.Code() == esdb.ErrorCodeResourceNotFound
}

// isConnectionClosed reports the error of a client that gave up: after
// MaxDiscoverAttempts failed discoveries the v4 client marks itself closed
// and fails every later call with ErrorCodeConnectionClosed.
func isConnectionClosed(err error) bool {
	var ee *esdb.Error
	return errors.As(err, &ee) && ee.Code() == esdb.ErrorCodeConnectionClosed
}

// unavailable reports the errors that mean "the server cannot be reached or
// cannot answer now": waiting may fix them. The client reports them as
// *esdb.Error codes, or, when a call fails before the client wraps it, as a
// gRPC status.
func unavailable(err error) bool {
	var ee *esdb.Error
	if errors.As(err, &ee) {
		switch ee.Code() {
		case esdb.ErrorUnavailable, esdb.ErrorCodeConnectionClosed, esdb.ErrorCodeDeadlineExceeded,
			esdb.ErrorCodeNotLeader, esdb.ErrorAborted:
			return true
		}
	}
	// status.Code looks through wrapping for a gRPC status.
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted:
		return true
	}
	return false
}

// translate wraps a client error with the operation, and with
// eventstore.ErrUnavailable when waiting may fix it.
func translate(op string, err error) error {
	if errors.Is(err, eventstore.ErrConcurrency) {
		return err // a *ConcurrencyError already names the stream
	}
	if unavailable(err) {
		return fmt.Errorf("%s: %w: %w", op, eventstore.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// gaveUp reports the errors of a client that has stopped for good: the one
// call whose rediscovery failed ("maximum discovery attempt count reached"),
// and every later call (ErrorCodeConnectionClosed).
func gaveUp(err error) bool {
	return isConnectionClosed(err) || strings.Contains(err.Error(), "maximum discovery attempt count reached")
}
