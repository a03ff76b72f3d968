package wiring

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/piperun/piperun/eventstore"
)

// sessionKeyStream holds the web session key of replicas that share an
// event store but no disk. Its name matches neither "run-" nor "user-", so
// the relay, the read models and EventStoreDB's narrowed global log leave
// it alone.
const sessionKeyStream = "piperun-session-key"

// sessionKeyType is the type of the one event of sessionKeyStream.
const sessionKeyType = "piperun.session_key.v1"

type sessionKeyEvent struct {
	Key string `json:"key"` // hex
}

// storeSessionKey returns the deployment's web session key from the event
// store, creating it if no replica has yet: the first append to the stream
// (expected version NoStream) wins, and a replica that loses the race reads
// the winner's key. Every replica thus signs cookies with one key without a
// key file shared between machines. The key is as secret as the store's
// contents, which hold every user's token hash anyway.
func storeSessionKey(ctx context.Context, store eventstore.Store) ([]byte, error) {
	for range 3 {
		evs, err := store.ReadStream(ctx, sessionKeyStream, 1, 1)
		if err != nil && !errors.Is(err, eventstore.ErrNotFound) {
			return nil, fmt.Errorf("read the session key from the event store: %w", err)
		}
		if len(evs) > 0 {
			var e sessionKeyEvent
			if err := json.Unmarshal(evs[0].Data, &e); err != nil {
				return nil, fmt.Errorf("session key in the event store: %w", err)
			}
			key, err := hex.DecodeString(e.Key)
			if err != nil || len(key) < 32 {
				return nil, errors.New("the session key in the event store is not 32 or more hex-encoded bytes")
			}
			return key, nil
		}
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("generate session key: %w", err)
		}
		data, _ := json.Marshal(sessionKeyEvent{Key: hex.EncodeToString(key)})
		_, _, err = store.Append(ctx, sessionKeyStream, eventstore.NoStream, eventstore.EventData{
			ID: uuid.NewString(), Type: sessionKeyType, Data: data, Actor: "system:server",
		})
		if err == nil {
			return key, nil
		}
		if !errors.Is(err, eventstore.ErrConcurrency) {
			return nil, fmt.Errorf("store the session key: %w", err)
		}
		// Another replica stored one first: read it.
	}
	return nil, errors.New("store the session key: the stream kept changing")
}
