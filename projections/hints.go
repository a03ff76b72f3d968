// State hints: run states the command side has in memory, taken instead of reading the read model.

package projections

import (
	"context"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/statecodec"
)

// hint is a run's state as the hints gave it, at its version.
type hint struct {
	state   []byte
	version int64
	// rec is the event the state follows, kept for a partial run (see
	// whole).
	rec domain.Recorded
}

// StateHints hands the projector, when it has it in memory, the state of a
// run right after a given event: command.Service's command cache, which holds
// the state it has just appended. The projector then need not read and
// decode the run's read model; the state is the same, since both are
// Apply over the same stored events.
type StateHints interface {
	// CachedState returns the state of run name right after its event
	// eventID, which the store holds at version, in statecodec.EncodeState's
	// form; the bytes must never change.
	CachedState(name string, version int64, eventID string) ([]byte, bool)
}

// hinted returns the state of run name after its event version (whose ID
// is id) from the store's hints, when the projector does not hold the run
// already and the hints have exactly that state (nil otherwise). The
// artifacts it used before come from artifact_refs. After an event that
// left the run's artifacts as they were, only the state's leading fields
// are decoded (see partial).
func (b *batchWriter) hinted(ctx context.Context, name string, version int64, id string, rec domain.Recorded) (*domain.Run, error) {
	if b.s.Hints == nil {
		return nil, nil
	}
	if _, ok := b.s.cache[name]; ok {
		return nil, nil
	}
	state, ok := b.s.Hints.CachedState(name, version, id)
	if !ok {
		return nil, nil
	}
	r := &domain.Run{}
	partial := domain.LeavesArtifacts(rec.Event)
	decode := statecodec.DecodeSharedState
	if partial {
		decode = statecodec.DecodeSharedStateHead
	}
	if err := decode(state, r); err != nil || r.Version != version || partial && r.Deleted {
		return nil, nil // not a state to trust: read the read model instead
	}
	if partial {
		b.partial[name] = true
	} else {
		refs, err := b.artifactRefs(ctx, name)
		if err != nil {
			return nil, err
		}
		b.refs[name] = refs
	}
	b.touched[name] = r
	b.hints[name] = hint{state: state, version: version, rec: rec}
	b.s.hintsUsed.Add(1)
	return r, nil
}

// HintsUsed is how many times the projector took a run's state from Hints.
func (s *Store) HintsUsed() int64 { return s.hintsUsed.Load() }

// whole decodes the whole hinted state of a partial run, for a later
// event of the batch; its artifacts are those it used before the batch,
// since the hinted event left them as they were. A state that does not
// decode (which EncodeState's never fails to) is not trusted: the run's
// read model, before the batch, is read and the hinted event applied to
// it, as without hints.
func (b *batchWriter) whole(ctx context.Context, name string) (*domain.Run, error) {
	h := b.hints[name]
	delete(b.partial, name)
	delete(b.hints, name)
	r := &domain.Run{}
	if err := statecodec.DecodeSharedState(h.state, r); err != nil {
		if r, err = b.loadState(ctx, name); err != nil {
			return nil, err
		}
		r.Apply(h.rec)
	}
	b.touched[name] = r
	b.refs[name] = referencedDigests(r) // as before h.rec, which left them
	return r, nil
}
