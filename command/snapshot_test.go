package command_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/piperun/piperun/command"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/eventstore"
	"github.com/piperun/piperun/eventstore/memory"
	"github.com/piperun/piperun/statecodec"
)

// TestSnapshotFormats checks what loading makes of the snapshots it may
// find: the binary state it writes, the JSON snapshots of older versions
// ({"schema": 1, "run": ...}), which it still uses, and snapshots it
// cannot read (damaged, another schema, another version than they claim),
// which it ignores, replaying the events instead. Every load must give
// the state a replay of the whole history gives.
func TestSnapshotFormats(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	svc := command.New(store)
	svc.SnapshotEvery = 2
	svc.CachedRuns = -1
	if _, err := svc.CreateRun(ctx, domain.CreateRun{Name: "r", Config: testConfig(2), Actor: owner}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.UpdateConfig(ctx, "r", testConfig(3), owner); err != nil {
		t.Fatal(err)
	}
	recs, _, err := svc.History(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	var want domain.Run
	for _, rec := range recs {
		want.Apply(rec)
	}
	snap, err := store.LoadSnapshot(ctx, command.RunStream("r"))
	if err != nil || snap.Version != 2 {
		t.Fatalf("snapshot after two events: %+v, %v", snap, err)
	}
	if len(snap.Data) == 0 || snap.Data[0] == '{' {
		t.Fatalf("the snapshot is not in the binary state form: %.40q", snap.Data)
	}
	var fromSnap domain.Run
	if err := statecodec.DecodeState(snap.Data, &fromSnap); err != nil || !reflect.DeepEqual(fromSnap, want) {
		t.Fatalf("the snapshot holds %+v (%v), want %+v", fromSnap, err, want)
	}

	plain, err := json.Marshal(map[string]any{"schema": 1, "run": want})
	if err != nil {
		t.Fatal(err)
	}
	// A snapshot that claims the right version but holds a state that is
	// not the replay's tells whether it was used.
	marked := want
	marked.Description = "from the snapshot"
	markedJSON, err := json.Marshal(map[string]any{"schema": 1, "run": marked})
	if err != nil {
		t.Fatal(err)
	}
	otherVersion, err := statecodec.EncodeState(want)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"old JSON snapshot", plain},
		{"old JSON snapshot, marked", markedJSON},
		{"JSON of another schema", []byte(`{"schema":7,"run":{}}`)},
		{"damaged binary", snap.Data[:len(snap.Data)/2]},
		{"not a snapshot", []byte("garbage")},
		{"binary of another version", otherVersion},
	} {
		version := int64(2)
		if c.name == "binary of another version" {
			version = 1
		}
		if err := store.SaveSnapshot(ctx, eventstore.Snapshot{Stream: command.RunStream("r"), Version: version, Data: c.data}); err != nil {
			t.Fatal(err)
		}
		got, err := svc.LoadRun(ctx, "r")
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		expect := want
		if c.name == "old JSON snapshot, marked" {
			expect = marked
		}
		if !reflect.DeepEqual(got, expect) {
			t.Fatalf("%s: loaded\n%+v\nwant\n%+v", c.name, got, expect)
		}
	}
}
