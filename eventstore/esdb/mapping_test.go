package esdb

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/piperun/piperun/eventstore"
)

func TestExpectedRevision(t *testing.T) {
	tests := []struct {
		expected int64
		want     esdb.ExpectedRevision
	}{
		{eventstore.AnyVersion, esdb.Any{}},
		{eventstore.NoStream, esdb.NoStream{}},
		{1, esdb.Revision(0)},
		{7, esdb.Revision(6)},
	}
	for _, tt := range tests {
		if got := expectedRevision(tt.expected); got != tt.want {
			t.Errorf("expectedRevision(%d) = %#v, want %#v", tt.expected, got, tt.want)
		}
	}
}

func TestVersionsAndRevisions(t *testing.T) {
	for _, tt := range []struct {
		revision uint64
		version  int64
	}{{0, 1}, {1, 2}, {41, 42}} {
		if got := versionOf(tt.revision); got != tt.version {
			t.Errorf("versionOf(%d) = %d, want %d", tt.revision, got, tt.version)
		}
	}
	for _, tt := range []struct {
		from int64
		want esdb.StreamPosition
	}{{-1, esdb.Start{}}, {0, esdb.Start{}}, {1, esdb.Start{}}, {2, esdb.Revision(1)}, {10, esdb.Revision(9)}} {
		if got := readFrom(tt.from); got != tt.want {
			t.Errorf("readFrom(%d) = %#v, want %#v", tt.from, got, tt.want)
		}
	}
}

func TestPositions(t *testing.T) {
	tests := []struct {
		commit uint64
		want   int64
		fails  bool
	}{
		{commit: 0, want: 1},
		{commit: 1234, want: 1235},
		{commit: math.MaxInt64 - 1, want: math.MaxInt64},
		{commit: math.MaxInt64, fails: true},
		{commit: math.MaxUint64, fails: true},
	}
	for _, tt := range tests {
		got, err := positionOf(tt.commit)
		if (err != nil) != tt.fails || got != tt.want {
			t.Errorf("positionOf(%d) = %d, %v; want %d, failure %v", tt.commit, got, err, tt.want, tt.fails)
		}
		if tt.fails {
			continue
		}
		// Reading after a position starts at the event there, and skips it.
		from, cursor := cursorAfter(got)
		at := esdb.Position{Commit: tt.commit, Prepare: tt.commit}
		if from != at || cursor == nil || *cursor != at || beyond(at, cursor) {
			t.Errorf("cursorAfter(%d) = %v, %v; want a read from %v that skips it", got, from, cursor, at)
		}
	}
	if from, cursor := cursorAfter(0); from != (esdb.Start{}) || cursor != nil {
		t.Errorf("cursorAfter(0) = %v, %v; want the start of $all", from, cursor)
	}
}

func TestBeyond(t *testing.T) {
	c := &esdb.Position{Commit: 100, Prepare: 100}
	tests := []struct {
		p      esdb.Position
		cursor *esdb.Position
		want   bool
	}{
		{esdb.Position{Commit: 0, Prepare: 0}, nil, true},
		{esdb.Position{Commit: 100, Prepare: 100}, c, false},
		{esdb.Position{Commit: 99, Prepare: 99}, c, false},
		{esdb.Position{Commit: 101, Prepare: 101}, c, true},
		// Explicit transactions share a commit position.
		{esdb.Position{Commit: 100, Prepare: 150}, c, true},
		{esdb.Position{Commit: 100, Prepare: 50}, c, false},
	}
	for _, tt := range tests {
		if got := beyond(tt.p, tt.cursor); got != tt.want {
			t.Errorf("beyond(%v, %v) = %v, want %v", tt.p, tt.cursor, got, tt.want)
		}
	}
}

func TestInGlobalLog(t *testing.T) {
	app := []string{"run-", "user-"}
	tests := []struct {
		prefixes  []string
		stream    string
		eventType string
		want      bool
	}{
		{nil, "run-a", "run.created.v1", true},
		{nil, "a-1", "x.v1", true},
		{nil, "$stats-127.0.0.1:2113", "$statsCollected", false},
		{nil, "$$run-a", "$metadata", false},
		{nil, "run-a", "$>", false}, // a link event
		{nil, "snapshot-run-a", snapshotType, false},
		{app, "run-a", "run.created.v1", true},
		{app, "user-bob", "user.registered.v1", true},
		{app, "log-a", "log.line.v1", false},
		{app, "snapshot-run-a", snapshotType, false},
	}
	for _, tt := range tests {
		if got := inGlobalLog(tt.prefixes, tt.stream, tt.eventType); got != tt.want {
			t.Errorf("inGlobalLog(%q, %q, %q) = %v, want %v", tt.prefixes, tt.stream, tt.eventType, got, tt.want)
		}
	}
}

func TestSubscriptionFilter(t *testing.T) {
	if got := subscriptionFilter(nil); !reflect.DeepEqual(got, esdb.ExcludeSystemEventsFilter()) {
		t.Errorf("filter without prefixes = %+v, want the system-event exclusion", got)
	}
	want := &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{"run-", "user-"}}
	if got := subscriptionFilter([]string{"run-", "user-"}); !reflect.DeepEqual(got, want) {
		t.Errorf("filter with prefixes = %+v, want %+v", got, want)
	}
}

// clientWrongVersion builds the error text of the v4.2.0 client for a
// wrong expected version (client.go, AppendToStream).
func clientWrongVersion(expected, current string) error {
	return fmt.Errorf("[ErrorCodeWrongExpectedVersion] an append request failed the optimistic concurrency on the server: %w",
		fmt.Errorf("wrong expected version: expecting '%s' but got '%s'", expected, current))
}

func TestActualVersion(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int64
	}{
		{"stream at revision 1", clientWrongVersion("0", "1"), 2},
		{"stream at revision 0", clientWrongVersion("no_stream", "0"), 1},
		{"missing stream", clientWrongVersion("3", "no_stream"), 0},
		{"expected any", clientWrongVersion("any", "41"), 42},
		{"negative revision", clientWrongVersion("0", "-1"), -1},
		{"other text", errors.New("wrong expected version"), -1},
	}
	for _, tt := range tests {
		if got := actualVersion(tt.err); got != tt.want {
			t.Errorf("%s: actualVersion(%q) = %d, want %d", tt.name, tt.err, got, tt.want)
		}
	}
}

func TestTranslate(t *testing.T) {
	conflict := &eventstore.ConcurrencyError{Stream: "run-a", Expected: 1, Actual: 2}
	tests := []struct {
		name        string
		err         error
		unavailable bool
	}{
		{"server down", status.Error(codes.Unavailable, "connection refused"), true},
		{"deadline", status.Error(codes.DeadlineExceeded, "slow"), true},
		{"wrapped by the client", fmt.Errorf("could not construct append operation. Reason: %w", status.Error(codes.Unavailable, "x")), true},
		{"access denied", status.Error(codes.PermissionDenied, "no"), false},
		{"other", errors.New("boom"), false},
		{"client error of unknown code", func() error { e, _ := esdb.FromError(errors.New("boom")); return e }(), false},
	}
	for _, tt := range tests {
		got := translate("append to \"run-a\"", tt.err)
		if errors.Is(got, eventstore.ErrUnavailable) != tt.unavailable {
			t.Errorf("%s: translate(%v) = %v, ErrUnavailable %v", tt.name, tt.err, got, tt.unavailable)
		}
		if !errors.Is(got, tt.err) {
			t.Errorf("%s: translate(%v) = %v, which does not wrap it", tt.name, tt.err, got)
		}
	}
	if got := translate("append", conflict); got != error(conflict) {
		t.Errorf("translate(conflict) = %v, want the *ConcurrencyError itself", got)
	}
}

func TestGaveUp(t *testing.T) {
	discovery := fmt.Errorf("maximum discovery attempt count reached: %v. Last Error: %w", 10, status.Error(codes.Unavailable, "refused"))
	if !gaveUp(discovery) {
		t.Errorf("gaveUp(%v) = false", discovery)
	}
	if gaveUp(status.Error(codes.Unavailable, "refused")) {
		t.Error("a failed call is not a client that gave up")
	}
}

func TestEventDataRoundTrip(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	aedt := time.Date(2024, 2, 29, 23, 59, 58, 123_456_789, time.FixedZone("AEDT", 11*3600))
	in := []eventstore.EventData{
		{ID: uuid.NewString(), Type: "run.created.v1", Data: []byte(`{"a":1}`), Actor: "alice", Time: aedt},
		{ID: uuid.NewString(), Type: "run.processed.v1", Data: []byte("not json"), Actor: "system:worker"},
	}
	out, err := toEventData("run-a", in, now)
	if err != nil {
		t.Fatal(err)
	}
	if out[0].ContentType != esdb.ContentTypeJson || out[1].ContentType != esdb.ContentTypeBinary {
		t.Errorf("content types %v, %v; want JSON then binary", out[0].ContentType, out[1].ContentType)
	}
	wantTimes := []time.Time{aedt, now}
	for i, d := range out {
		r := &esdb.RecordedEvent{
			EventID: d.EventID, EventType: d.EventType, StreamID: "run-a", EventNumber: uint64(i),
			Position: esdb.Position{Commit: uint64(100 * i), Prepare: uint64(100 * i)}, CreatedDate: now.Add(time.Hour),
			Data: d.Data, UserMetadata: d.Metadata,
		}
		e, err := toEvent(r)
		if err != nil {
			t.Fatal(err)
		}
		want := eventstore.Event{ID: in[i].ID, Stream: "run-a", Type: in[i].Type, Version: int64(i) + 1, Position: int64(100*i) + 1, Data: in[i].Data, Actor: in[i].Actor}
		if e.ID != want.ID || e.Stream != want.Stream || e.Type != want.Type || e.Version != want.Version ||
			e.Position != want.Position || string(e.Data) != string(want.Data) || e.Actor != want.Actor {
			t.Errorf("event %d = %+v, want %+v", i, e, want)
		}
		if !e.Time.Equal(wantTimes[i]) {
			t.Errorf("event %d time = %v, want %v", i, e.Time, wantTimes[i])
		}
	}

	// An event written by another tool has no metadata of ours.
	foreign := &esdb.RecordedEvent{EventID: uuid.New(), StreamID: "run-b", EventType: "x", CreatedDate: now, UserMetadata: []byte("garbage")}
	if e, err := toEvent(foreign); err != nil || e.Actor != "" || !e.Time.Equal(now) {
		t.Errorf("foreign event = %+v, %v; want no actor and the server's creation time", e, err)
	}

	bad := []eventstore.EventData{{ID: "evt-1", Type: "run.created.v1"}}
	if _, err := toEventData("run-a", bad, now); err == nil {
		t.Error("an id that is not a UUID was accepted")
	}
}

func TestCheckStreamName(t *testing.T) {
	for _, tt := range []struct {
		stream string
		ok     bool
	}{{"run-a", true}, {"run with spaces", true}, {"$all", false}, {"$$run-a", false}, {"snapshot-run-a", false}} {
		if err := checkStreamName(tt.stream); (err == nil) != tt.ok {
			t.Errorf("checkStreamName(%q) = %v, want ok %v", tt.stream, err, tt.ok)
		}
	}
}
