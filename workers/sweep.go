package workers

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/piperun/piperun/artifacts"
	"github.com/piperun/piperun/eventstore"
)

// SweepStore is the part of the artifact store a sweep uses.
type SweepStore interface {
	Walk(ctx context.Context, fn func(artifacts.Entry) error) error
	DeleteIfUnchanged(e artifacts.Entry) (bool, error)
}

// SweepIndex answers which artifacts runs use, as of a position of the
// log: the read models' artifact index.
type SweepIndex interface {
	ArtifactRefs
	Position() int64
}

// SweepReport tells what a sweep did.
type SweepReport struct {
	Examined int   // stored files older than the grace period
	Deleted  int   // of those, the ones no run used, removed
	Bytes    int64 // their size
	// Skipped, when not empty, says why the sweep deleted nothing.
	Skipped string
}

// Sweep deletes the stored artifacts that no run uses (in its products or
// its backup) and that are older than grace, and the leftovers of Puts that
// never finished. The janitor deletes what a restore or a deletion
// abandons, but leaves everything while any job is pending, and a process
// that dies between writing products and recording them leaves files no
// run names: this finds them.
//
// It deletes nothing unless the read models have caught up with the log
// (their index then names every artifact any stored event gives a run) and
// no job is pending (a running job's products are not recorded yet). A
// file younger than grace is left, and one that a Put replaced since it was
// listed is left too (artifacts.DeleteIfUnchanged).
func Sweep(ctx context.Context, store eventstore.Store, index SweepIndex, arts SweepStore, grace time.Duration, log *slog.Logger) (SweepReport, error) {
	var rep SweepReport
	head, err := store.HeadPosition(ctx)
	if err != nil {
		return rep, fmt.Errorf("sweep artifacts: %w", err)
	}
	if at := index.Position(); at < head {
		rep.Skipped = fmt.Sprintf("the read models are at position %d of %d", at, head)
		return rep, nil
	}
	cutoff := time.Now().Add(-grace)
	var old []artifacts.Entry
	if err := arts.Walk(ctx, func(e artifacts.Entry) error {
		if e.Info.ModTime().Before(cutoff) {
			old = append(old, e)
		}
		return nil
	}); err != nil {
		return rep, fmt.Errorf("sweep artifacts: %w", err)
	}
	rep.Examined = len(old)
	var digests []string
	for _, e := range old {
		if e.Digest != "" {
			digests = append(digests, e.Digest)
		}
	}
	used, pending, err := index.ArtifactUse(ctx, digests, "")
	if err != nil {
		return rep, fmt.Errorf("sweep artifacts: %w", err)
	}
	if pending {
		rep.Skipped = "a processing job is pending"
		return rep, nil
	}
	for _, e := range old {
		if used[e.Digest] {
			continue
		}
		gone, err := arts.DeleteIfUnchanged(e)
		if err != nil {
			return rep, fmt.Errorf("sweep artifacts: %w", err)
		}
		if gone {
			rep.Deleted++
			rep.Bytes += e.Info.Size()
			log.Info("artifact sweep deleted an unused file", "artifact", e.Digest, "unfinished_put", e.Temp, "bytes", e.Info.Size())
		}
	}
	return rep, nil
}
