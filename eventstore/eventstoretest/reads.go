// Contract tests of reading: stream ranges, the global log, its head and change notifications, events read back as written.

package eventstoretest

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/piperun/piperun/eventstore"
)

func (c *contract) readStreamRange(t *testing.T) {
	s := c.open(t)
	stream := c.stream("run")
	mustAppend(t, s, stream, eventstore.NoStream, newEvents(5, "run.processed.v1")...)
	tests := []struct {
		from  int64
		limit int
		want  []int64
	}{
		{from: 1, limit: 0, want: []int64{1, 2, 3, 4, 5}},
		{from: 0, limit: 0, want: []int64{1, 2, 3, 4, 5}},
		{from: 3, limit: 0, want: []int64{3, 4, 5}},
		{from: 2, limit: 2, want: []int64{2, 3}},
		{from: 1, limit: 10, want: []int64{1, 2, 3, 4, 5}},
		{from: 5, limit: 1, want: []int64{5}},
		{from: 6, limit: 0, want: []int64{}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("from %d limit %d", tt.from, tt.limit), func(t *testing.T) {
			checkVersions(t, mustReadStream(t, s, stream, tt.from, tt.limit), stream, tt.want...)
		})
	}
}

func (c *contract) readMissingStream(t *testing.T) {
	s := c.open(t)
	stream := c.stream("missing")
	if evs := mustReadStream(t, s, stream, 1, 0); len(evs) != 0 {
		t.Errorf("missing stream has %d events", len(evs))
	}
	if v := mustVersion(t, s, stream); v != 0 {
		t.Errorf("missing stream has version %d, want 0", v)
	}
}

func (c *contract) readAllOrderAndLimit(t *testing.T) {
	s := c.open(t)
	a, b := c.stream("a"), c.stream("b")
	head := mustHead(t, s)
	mustAppend(t, s, a, eventstore.NoStream, newEvents(2, "run.created.v1")...)
	mustAppend(t, s, b, eventstore.NoStream, newEvents(1, "run.created.v1")...)
	_, last := mustAppend(t, s, a, 2, newEvents(1, "run.processed.v1")...)
	want := []struct {
		stream  string
		version int64
	}{{a, 1}, {a, 2}, {b, 1}, {a, 3}}

	for _, limit := range []int{0, 1, 2, 3, 100} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			evs := readOwn(t, s, head, limit, a, b)
			if len(evs) != len(want) {
				t.Fatalf("got %d events, want %d", len(evs), len(want))
			}
			for i, e := range evs {
				if e.Stream != want[i].stream || e.Version != want[i].version {
					t.Errorf("event %d is %q v%d, want %q v%d", i, e.Stream, e.Version, want[i].stream, want[i].version)
				}
			}
			if evs[len(evs)-1].Position != last {
				t.Errorf("last position %d, Append returned %d", evs[len(evs)-1].Position, last)
			}
		})
	}
	page, err := s.ReadAll(ctx(t), head, 2)
	if err != nil {
		t.Fatalf("read global log: %v", err)
	}
	if len(page) != 2 {
		t.Errorf("ReadAll limit 2 with 4 events to come returned %d events; a short page means the end of the log", len(page))
	}
	if evs := readOwn(t, s, last, 0, a, b); len(evs) != 0 {
		t.Errorf("ReadAll after the last position returned %d of our events", len(evs))
	}
}

func (c *contract) headPosition(t *testing.T) {
	s := c.open(t)
	stream := c.stream("run")
	before := mustHead(t, s)
	_, p := mustAppend(t, s, stream, eventstore.NoStream, newEvents(2, "run.created.v1")...)
	head := mustHead(t, s)
	if head < p || head <= before {
		t.Errorf("head %d after an append at position %d (head before: %d)", head, p, before)
	}
	// An empty store knows no other writer, so its head is exactly our event.
	if before == 0 && head != p {
		t.Errorf("head %d, want the position of the only append, %d", head, p)
	}
	if evs := readOwn(t, s, head, 0, stream); len(evs) != 0 {
		t.Errorf("%d events after the head", len(evs))
	}
}

func (c *contract) changedAfterAppend(t *testing.T) {
	s := c.open(t)
	stream := c.stream("run")
	ch := s.Changed()
	select {
	case <-ch:
		t.Fatal("Changed is closed before any append")
	default:
	}
	for v := range int64(3) {
		mustAppend(t, s, stream, v, newEvents(1, "run.processed.v1")...)
		select {
		case <-ch:
		case <-time.After(waitTimeout):
			t.Fatalf("Changed not closed %v after append %d", waitTimeout, v+1)
		}
		ch = s.Changed()
	}
}

func (c *contract) eventRoundTrip(t *testing.T) {
	s := c.open(t)
	stream := c.stream("run")
	in := []eventstore.EventData{
		{
			ID:    uuid.NewString(),
			Type:  "run.created.v1",
			Data:  []byte(`{"name":"vast-é","nested":{"q":"\"x\"","nul":"\u0000"},"n":[1,2.5e10,-3]}`),
			Actor: "alice",
			Time:  time.Date(2024, 2, 29, 23, 59, 58, 123_456_789, time.FixedZone("AEDT", 11*3600)),
		},
		{
			ID:    uuid.NewString(),
			Type:  "run.processed.v2",
			Data:  []byte(`{}`),
			Actor: "system:processing-worker",
			Time:  time.Now(),
		},
	}
	_, p := mustAppend(t, s, stream, eventstore.NoStream, in...)
	evs := mustReadStream(t, s, stream, 1, 0)
	checkVersions(t, evs, stream, 1, 2)
	for i, got := range evs {
		want := in[i]
		if got.ID != want.ID || got.Type != want.Type || got.Actor != want.Actor || got.Stream != stream {
			t.Errorf("event %d = {ID %s Type %s Actor %s Stream %s}, want {%s %s %s %s}",
				i, got.ID, got.Type, got.Actor, got.Stream, want.ID, want.Type, want.Actor, stream)
		}
		if !bytes.Equal(got.Data, want.Data) {
			t.Errorf("event %d data = %q, want %q", i, got.Data, want.Data)
		}
		if d := got.Time.Sub(want.Time).Abs(); d >= time.Millisecond {
			t.Errorf("event %d time = %v, want %v (off by %v)", i, got.Time, want.Time, d)
		}
	}
	if evs[1].Position != p {
		t.Errorf("position %d, Append returned %d", evs[1].Position, p)
	}
	// ReadAll returns the same fields as ReadStream.
	all := readOwn(t, s, p-1, 0, stream)
	if len(all) != 1 || all[0].ID != evs[1].ID || !bytes.Equal(all[0].Data, evs[1].Data) || !all[0].Time.Equal(evs[1].Time) || all[0].Version != 2 {
		t.Errorf("ReadAll after %d = %+v, want %+v", p-1, all, evs[1])
	}

	// A zero time is replaced by the time of the append.
	zero := newEvents(1, "run.processed.v1")
	zero[0].Time = time.Time{}
	before := time.Now()
	mustAppend(t, s, stream, 2, zero...)
	got := mustReadStream(t, s, stream, 3, 0)
	if len(got) != 1 || got[0].Time.Before(before.Add(-time.Second)) || got[0].Time.After(time.Now().Add(time.Second)) {
		t.Errorf("event appended with a zero time has time %v, want about %v", got[0].Time, before)
	}
}

func (c *contract) oddStreamNames(t *testing.T) {
	s := c.open(t)
	for _, name := range []string{"run-a_b.c-1", "run with spaces", "run/ä?#%'\";--"} {
		t.Run(name, func(t *testing.T) {
			stream := c.stream(name)
			mustAppend(t, s, stream, eventstore.NoStream, newEvents(2, "run.created.v1")...)
			checkVersions(t, mustReadStream(t, s, stream, 1, 0), stream, 1, 2)
			if v := mustVersion(t, s, stream); v != 2 {
				t.Errorf("version = %d, want 2", v)
			}
			snap := eventstore.Snapshot{Stream: stream, Version: 2, Data: []byte(`{}`)}
			if err := s.SaveSnapshot(ctx(t), snap); err != nil {
				t.Fatalf("save snapshot: %v", err)
			}
			if got, err := s.LoadSnapshot(ctx(t), stream); err != nil || got.Stream != stream || got.Version != 2 {
				t.Errorf("load snapshot = %+v, %v", got, err)
			}
		})
	}
}
