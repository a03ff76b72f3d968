package wiring

import (
	"bytes"
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/piperun/piperun/eventstore"
	"github.com/piperun/piperun/eventstore/sqlite"
)

// TestStoreSessionKeyIsOnePerStore: replicas starting together on one
// event store (here, several goroutines on one SQLite file) all end up with
// the same key, and a later start reads it back.
func TestStoreSessionKeyIsOnePerStore(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "events.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	keys := make([][]byte, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			k, err := storeSessionKey(ctx, store)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	for i, k := range keys {
		if len(k) != 32 || !bytes.Equal(k, keys[0]) {
			t.Fatalf("replica %d got key %x, replica 0 %x", i, k, keys[0])
		}
	}
	again, err := storeSessionKey(ctx, store)
	if err != nil || !bytes.Equal(again, keys[0]) {
		t.Fatalf("a later start got %x, %v; want the stored key", again, err)
	}
	if v, _ := store.StreamVersion(ctx, sessionKeyStream); v != 1 {
		t.Errorf("the key stream has %d events, want 1", v)
	}
}

func TestStoreSessionKeyRefusesADamagedKey(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "events.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, _, err := store.Append(ctx, sessionKeyStream, eventstore.NoStream, eventstore.EventData{
		ID: "k", Type: sessionKeyType, Data: []byte(`{"key":"abcd"}`),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := storeSessionKey(ctx, store); err == nil {
		t.Fatal("a 2-byte key was accepted")
	}
}
