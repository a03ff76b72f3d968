// Which runs' work is this process's: partition ownership and leases.

package workers

import (
	"fmt"

	"github.com/piperun/piperun/internal/lease"
)

// owns reports whether the run's work is this process's: always without
// an Owner.
func (w *Workers) owns(run string) bool {
	return w.Owner == nil || w.Owner.Owns(run)
}

// Disown stops the jobs of the runs that are no longer this process's
// (Owner has just said so: their partitions were revoked). A stopped
// job's outcome is not recorded: the job stays pending for the run's new
// owner, which starts it again.
func (w *Workers) Disown() {
	w.init()
	if w.Owner == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, j := range w.running {
		if !j.disowned && !w.Owner.Owns(j.run) {
			w.Logger.Info("stopping job of a run no longer owned by this process", "run", j.run, "job", id)
			j.disowned = true
			j.stop()
		}
	}
}

// disowned reports whether Disown stopped the job.
func (w *Workers) disowned(jobID string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	j := w.running[jobID]
	return j != nil && j.disowned
}

// lease takes the lease on name when the workers have leases (nil, true
// when they have none).
func (w *Workers) lease(name string) (*lease.Lease, bool, error) {
	if w.Leases == nil {
		return nil, true, nil
	}
	l, ok, err := w.Leases.TryAcquire(name)
	if err != nil {
		return nil, false, fmt.Errorf("workers: %w", err)
	}
	if !ok {
		w.Logger.Info("left to the process that holds its lease", "lease", name)
	}
	return l, ok, nil
}

// release gives up a lease (nil: none); finished removes its file, for
// work whose outcome is recorded.
func (w *Workers) release(l *lease.Lease, finished bool) {
	if l == nil {
		return
	}
	if err := l.Release(finished); err != nil {
		w.Logger.Warn("release lease", "err", err)
	}
}
