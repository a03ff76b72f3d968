// Loading a run: the command cache's copy, or its newest snapshot and the events after it; its decoded history.

package command

import (
	"context"
	"errors"
	"fmt"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/eventjson"
	"github.com/piperun/piperun/eventstore"
	"github.com/piperun/piperun/statecodec"
)

// A snapshot is the run's state as statecodec.EncodeState writes it. Older
// snapshots were JSON, {"schema": 1, "run": <the Run's JSON>}; they are
// still read. (Older programs ignore the new ones: they are not JSON.)
const jsonSnapshotSchema = 1

type snapshotEnvelope struct {
	Schema int            `json:"schema"`
	Run    jsontext.Value `json:"run"`
}

// LoadRun returns the current state of a run (the zero Run if its stream is
// empty): the command cache's copy when the store says the stream is at
// the cached version (one index lookup), else its newest snapshot plus the
// events after it.
func (s *Service) LoadRun(ctx context.Context, name string) (domain.Run, error) {
	if cache := s.runCache(); cache != nil {
		if v, err := s.Store.StreamVersion(ctx, RunStream(name)); err == nil && v > 0 {
			if r, ok := cache.getVersion(name, v); ok {
				return r, nil
			}
		}
	}
	r, _, err := s.loadRun(ctx, name)
	return r, err
}

// loadRun is LoadRun, also returning the bytes of the events read after
// the snapshot.
func (s *Service) loadRun(ctx context.Context, name string) (domain.Run, int, error) {
	stream := RunStream(name)
	var r domain.Run
	from := int64(1)
	snap, err := s.Store.LoadSnapshot(ctx, stream)
	switch {
	case err == nil:
		if sr, ok := decodeSnapshot(snap.Data); ok && sr.Version == snap.Version {
			r = sr
			from = snap.Version + 1
		}
	case errors.Is(err, eventstore.ErrNotFound):
	default:
		return domain.Run{}, 0, fmt.Errorf("load snapshot of run %s: %w", name, err)
	}
	evs, err := s.Store.ReadStream(ctx, stream, from, 0)
	if err != nil {
		return domain.Run{}, 0, fmt.Errorf("read run %s: %w", name, err)
	}
	tail := 0
	for _, ev := range evs {
		rec, err := eventjson.Recorded(ev)
		if err != nil {
			return domain.Run{}, 0, fmt.Errorf("load run %s: %w", name, err)
		}
		r.Apply(rec)
		tail += len(ev.Data)
	}
	return r, tail, nil
}

// decodeSnapshot returns the run a snapshot holds; ok is false for a
// snapshot it cannot read, which loading then ignores.
func decodeSnapshot(data []byte) (r domain.Run, ok bool) {
	if len(data) > 0 && data[0] == '{' {
		var env snapshotEnvelope
		if jsonv2.Unmarshal(data, &env, jsonOptions) != nil || env.Schema != jsonSnapshotSchema {
			return r, false
		}
		return r, statecodec.DecodeState(env.Run, &r) == nil
	}
	return r, statecodec.DecodeState(data, &r) == nil
}

// jsonOptions decode snapshots with the JSON v2 engine exactly as
// encoding/json would, about twice as fast.
var jsonOptions = jsonv1.DefaultOptionsV1()

// History returns every recorded event of a run, decoded.
func (s *Service) History(ctx context.Context, name string) ([]domain.Recorded, []eventstore.Event, error) {
	evs, err := s.Store.ReadStream(ctx, RunStream(name), 1, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("read run %s: %w", name, err)
	}
	recs := make([]domain.Recorded, 0, len(evs))
	for _, ev := range evs {
		rec, err := eventjson.Recorded(ev)
		if err != nil {
			return nil, nil, fmt.Errorf("history of run %s: %w", name, err)
		}
		recs = append(recs, rec)
	}
	return recs, evs, nil
}
