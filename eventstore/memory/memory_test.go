package memory_test

import (
	"context"
	"errors"
	"testing"

	"github.com/piperun/piperun/eventstore"
	"github.com/piperun/piperun/eventstore/eventstoretest"
	"github.com/piperun/piperun/eventstore/memory"
)

func TestContract(t *testing.T) {
	eventstoretest.Run(t, eventstoretest.Factory{
		New: func(t *testing.T) eventstore.Store { return memory.New() },
	})
}

func event(id string) eventstore.EventData {
	return eventstore.EventData{ID: id, Type: "run.created.v1", Data: []byte(`{"a":1}`), Actor: "tester"}
}

func TestDuplicateIDWritesNothing(t *testing.T) {
	s := memory.New()
	ctx := context.Background()
	if _, _, err := s.Append(ctx, "run-a", eventstore.NoStream, event("id-1")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		events []eventstore.EventData
	}{
		{"id already stored", []eventstore.EventData{event("id-2"), event("id-1")}},
		{"id twice in one append", []eventstore.EventData{event("id-3"), event("id-3")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := s.Append(ctx, "run-b", eventstore.NoStream, tt.events...)
			if err == nil || errors.Is(err, eventstore.ErrConcurrency) {
				t.Errorf("err = %v, want a duplicate id error", err)
			}
			if v, _ := s.StreamVersion(ctx, "run-b"); v != 0 {
				t.Errorf("stream at version %d after a refused append", v)
			}
			if head, _ := s.HeadPosition(ctx); head != 1 {
				t.Errorf("head %d after a refused append, want 1", head)
			}
		})
	}
}

// TestEventsAreCopies checks that callers cannot change stored events through
// the slices they passed in or got back.
func TestEventsAreCopies(t *testing.T) {
	s := memory.New()
	ctx := context.Background()
	in := event("id-1")
	if _, _, err := s.Append(ctx, "run-a", eventstore.NoStream, in); err != nil {
		t.Fatal(err)
	}
	in.Data[0] = 'X'
	got, _ := s.ReadStream(ctx, "run-a", 1, 0)
	got[0].Data[1] = 'Y'
	all, _ := s.ReadAll(ctx, 0, 0)
	if string(all[0].Data) != `{"a":1}` {
		t.Errorf("stored data changed to %s", all[0].Data)
	}
	snap := eventstore.Snapshot{Stream: "run-a", Version: 1, Data: []byte(`{}`)}
	if err := s.SaveSnapshot(ctx, snap); err != nil {
		t.Fatal(err)
	}
	snap.Data[0] = 'X'
	if loaded, _ := s.LoadSnapshot(ctx, "run-a"); string(loaded.Data) != `{}` {
		t.Errorf("stored snapshot changed to %s", loaded.Data)
	}
}
