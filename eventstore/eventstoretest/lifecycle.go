// Contract tests of snapshots, cancelled contexts, a closed store and durability across a reopen.

package eventstoretest

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/piperun/piperun/eventstore"
)

func (c *contract) snapshots(t *testing.T) {
	s := c.open(t)
	stream := c.stream("run")
	if _, err := s.LoadSnapshot(ctx(t), stream); !errors.Is(err, eventstore.ErrNotFound) {
		t.Fatalf("load a missing snapshot: err = %v, want ErrNotFound", err)
	}
	for _, want := range []eventstore.Snapshot{
		{Stream: stream, Version: 3, Data: []byte(`{"status":"Completed"}`)},
		{Stream: stream, Version: 7, Data: []byte(`{"status":"Restoring","images":["a.fits"]}`)},
	} {
		if err := s.SaveSnapshot(ctx(t), want); err != nil {
			t.Fatalf("save snapshot v%d: %v", want.Version, err)
		}
		got, err := s.LoadSnapshot(ctx(t), stream)
		if err != nil {
			t.Fatalf("load snapshot: %v", err)
		}
		if got.Stream != want.Stream || got.Version != want.Version || !bytes.Equal(got.Data, want.Data) {
			t.Errorf("loaded snapshot %q v%d %s, want %q v%d %s", got.Stream, got.Version, got.Data, want.Stream, want.Version, want.Data)
		}
	}
	if _, err := s.LoadSnapshot(ctx(t), c.stream("other")); !errors.Is(err, eventstore.ErrNotFound) {
		t.Errorf("load the snapshot of another stream: err = %v, want ErrNotFound", err)
	}
}

func (c *contract) cancelledContext(t *testing.T) {
	s := c.open(t)
	stream := c.stream("run")
	cancelled, cancel := context.WithCancel(ctx(t))
	cancel()
	calls := []struct {
		name string
		call func() error
	}{
		{"Append", func() error {
			_, _, err := s.Append(cancelled, stream, eventstore.NoStream, newEvents(1, "run.created.v1")...)
			return err
		}},
		{"ReadStream", func() error { _, err := s.ReadStream(cancelled, stream, 1, 0); return err }},
		{"StreamVersion", func() error { _, err := s.StreamVersion(cancelled, stream); return err }},
		{"ReadAll", func() error { _, err := s.ReadAll(cancelled, 0, 10); return err }},
		{"HeadPosition", func() error { _, err := s.HeadPosition(cancelled); return err }},
		{"SaveSnapshot", func() error { return s.SaveSnapshot(cancelled, eventstore.Snapshot{Stream: stream, Version: 1}) }},
		{"LoadSnapshot", func() error { _, err := s.LoadSnapshot(cancelled, stream); return err }},
	}
	for _, tt := range calls {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want context.Canceled", err)
			}
		})
	}
	if v := mustVersion(t, s, stream); v != 0 {
		t.Errorf("cancelled append wrote: version %d", v)
	}
	if _, err := s.LoadSnapshot(ctx(t), stream); !errors.Is(err, eventstore.ErrNotFound) {
		t.Errorf("cancelled snapshot save: load err = %v, want ErrNotFound", err)
	}
}

func (c *contract) closed(t *testing.T) {
	s := c.f.New(t)
	stream := c.stream("run")
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, _, err := s.Append(ctx(t), stream, eventstore.NoStream, newEvents(1, "run.created.v1")...); err == nil {
		t.Error("Append on a closed store succeeded")
	}
	if _, err := s.ReadAll(ctx(t), 0, 1); err == nil {
		t.Error("ReadAll on a closed store succeeded")
	}
}

func (c *contract) durable(t *testing.T) {
	if c.f.Reopen == nil {
		t.Skip("the store is not durable (Factory.Reopen is nil)")
	}
	s := c.f.New(t)
	stream := c.stream("run")
	in := newEvents(3, "run.created.v1")
	_, p := mustAppend(t, s, stream, eventstore.NoStream, in...)
	snap := eventstore.Snapshot{Stream: stream, Version: 3, Data: []byte(`{"v":3}`)}
	if err := s.SaveSnapshot(ctx(t), snap); err != nil {
		t.Fatalf("save snapshot: %v", err)
	}

	s = c.f.Reopen(t, s)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close reopened store: %v", err)
		}
	})
	evs := mustReadStream(t, s, stream, 1, 0)
	checkVersions(t, evs, stream, 1, 2, 3)
	for i, e := range evs {
		if e.ID != in[i].ID || !bytes.Equal(e.Data, in[i].Data) {
			t.Errorf("event %d after reopen = %s %s, want %s %s", i, e.ID, e.Data, in[i].ID, in[i].Data)
		}
	}
	if head := mustHead(t, s); head < p {
		t.Errorf("head after reopen %d, before %d", head, p)
	}
	if got, err := s.LoadSnapshot(ctx(t), stream); err != nil || got.Version != 3 || !bytes.Equal(got.Data, snap.Data) {
		t.Errorf("snapshot after reopen = %+v, %v", got, err)
	}
	// The expected-version check and positions carry on from the stored state.
	if _, _, err := s.Append(ctx(t), stream, eventstore.NoStream, newEvents(1, "run.created.v1")...); !errors.Is(err, eventstore.ErrConcurrency) {
		t.Errorf("NoStream on a reopened existing stream: err = %v, want ErrConcurrency", err)
	}
	v, p2 := mustAppend(t, s, stream, 3, newEvents(1, "run.processed.v1")...)
	if v != 4 || p2 <= p {
		t.Errorf("append after reopen gave version %d position %d, want 4 and > %d", v, p2, p)
	}
}
