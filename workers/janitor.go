// Deletions and the artifact janitor.

package workers

import (
	"context"
	"fmt"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/eventjson"
	"github.com/piperun/piperun/messaging"
)

// HandleDeletion finishes the pending deletion of a run.
func (w *Workers) HandleDeletion(ctx context.Context, run string) error {
	w.init()
	_, err := w.Svc.ExecRun(ctx, run, ActorJanitor, func(r *domain.Run) ([]domain.Event, error) {
		return r.FinishDeletion(), nil
	})
	if err != nil {
		return fmt.Errorf("finish deletion of run %s: %w", run, err)
	}
	return nil
}

// HandleJanitor deletes the artifacts that a restore abandoned or a deleted
// run left, unless some run still references them.
func (w *Workers) HandleJanitor(ctx context.Context, env messaging.Envelope) error {
	w.init()
	e, err := eventjson.Decode(env.Type, env.Data)
	if err != nil {
		w.Logger.Error("janitor: drop undecodable event", "id", env.ID, "err", err)
		return nil
	}
	var candidates []domain.Artifact
	switch e := e.(type) {
	case domain.RunRestored:
		candidates = e.Abandoned
	case domain.RunDeleted:
		candidates = e.Artifacts
	}
	if len(candidates) == 0 {
		return nil
	}
	// The read models may lag behind the event being handled: take the
	// run's own state from the store, the others' from the read models.
	own, err := w.Svc.LoadRun(ctx, env.Run)
	if err != nil {
		return fmt.Errorf("janitor: %w", err)
	}
	live, pending, err := w.othersUse(ctx, env.Run, candidates)
	if err != nil {
		return fmt.Errorf("janitor: %w", err)
	}
	if !own.Deleted {
		pending = pending || own.Job != nil
		uses(&own, live)
	}
	if pending {
		// A running job may have written products with the same content
		// (products are content-addressed) that it has not recorded yet:
		// deleting now could pull them from under it. Leave the
		// candidates; an orphaned file costs only space.
		w.Logger.Info("janitor left artifacts in place while a job is pending", "run", env.Run, "artifacts", len(candidates))
		return nil
	}
	for _, a := range candidates {
		if live[a.Digest] {
			continue
		}
		if err := w.Artifacts.Delete(a.Digest); err != nil {
			return fmt.Errorf("janitor: delete %s: %w", a.Digest, err)
		}
		w.Logger.Info("janitor deleted artifact", "run", env.Run, "artifact", a.Name, "digest", a.Digest)
	}
	return nil
}

// ArtifactRefs answers the janitor's question from an index: which of
// these artifacts do runs other than one use, and is any job pending.
type ArtifactRefs interface {
	ArtifactUse(ctx context.Context, digests []string, except string) (used map[string]bool, pendingJob bool, err error)
}

// othersUse returns the candidates that runs other than run use, and
// whether any of those runs has a job pending: from Refs when set, else by
// reading every run's state.
func (w *Workers) othersUse(ctx context.Context, run string, candidates []domain.Artifact) (map[string]bool, bool, error) {
	if w.Refs != nil {
		digests := make([]string, len(candidates))
		for i, a := range candidates {
			digests[i] = a.Digest
		}
		return w.Refs.ArtifactUse(ctx, digests, run)
	}
	runs, err := w.Runs.ListRunStates(ctx)
	if err != nil {
		return nil, false, err
	}
	live, pending := map[string]bool{}, false
	for i := range runs {
		r := &runs[i]
		if r.Name == run || r.Deleted {
			continue
		}
		pending = pending || r.Job != nil
		uses(r, live)
	}
	return live, pending, nil
}

// uses marks the artifacts of a run's products and backup in live.
func uses(r *domain.Run, live map[string]bool) {
	if r.Products != nil {
		for _, a := range r.Products.Artifacts {
			live[a.Digest] = true
		}
	}
	if r.Backup != nil {
		for _, a := range r.Backup.Products.Artifacts {
			live[a.Digest] = true
		}
	}
}
