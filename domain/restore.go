// Restore decisions: requesting a restore, checking the backup, and its outcome.

package domain

import (
	"fmt"
)

// RequestRestore is the command to restore a run to its pre-addition
// version.
type RequestRestore struct {
	RequestID string
	Debug     bool
	// Log is the name of the new restore log,
	// "<YYYY-MM-DD-HH-MM-SS>_restore_log.txt".
	Log   string
	Actor Actor
}

// RequestRestore decides a restore request: only the creator or an
// administrator, only from Completed or Error, only with a backup.
func (r *Run) RequestRestore(c RequestRestore) ([]Event, error) {
	if err := r.mustExist(); err != nil {
		return nil, err
	}
	if !r.mayChange(c.Actor) {
		return nil, errorf(ErrForbidden, "only the run's creator (%s) or an administrator may restore it", r.Owner)
	}
	if r.Status != StatusCompleted && r.Status != StatusError {
		return nil, errorf(ErrNotRestorable, "the run is %s; a restore needs status Completed or Error", r.Status)
	}
	if r.Backup == nil {
		return nil, errorf(ErrNotRestorable, "the run has no backup to restore: a backup is taken when images are added, and a restore uses it up")
	}
	return []Event{RestoreRequested{
		RequestID: c.RequestID, Debug: c.Debug, Log: c.Log,
		PreviousStatus: r.Status, BackupVersion: r.Backup.Version,
	}}, nil
}

// CheckBackup checks what can be checked of the backup without I/O: its
// image list must match its configuration.
func (b *Backup) CheckBackup() error {
	want := b.Config.Inputs.Images
	have := make(map[string]bool, len(b.Products.Images))
	for _, im := range b.Products.Images {
		have[im.Path] = true
	}
	if len(have) != len(want) {
		return fmt.Errorf("the backup's products hold %d images but its configuration lists %d", len(have), len(want))
	}
	for _, img := range want {
		if !have[img] {
			return fmt.Errorf("image %s of the backup's configuration is missing from its products", img)
		}
	}
	return nil
}

// FinishRestore decides the end of a restore. verifyErr is the result of
// checking the backup's artifacts (nil when whole). It returns no events
// when the restore is no longer pending (a redelivered message).
func (r *Run) FinishRestore(requestID string, verifyErr error) []Event {
	if r.Restore == nil || r.Restore.ID != requestID || r.Status != StatusRestoring {
		return nil
	}
	if r.Backup == nil {
		return []Event{RestoreFailed{RequestID: requestID, Reason: "the backup is gone"}}
	}
	if err := r.Backup.CheckBackup(); err != nil {
		return []Event{RestoreFailed{RequestID: requestID, Reason: err.Error()}}
	}
	if verifyErr != nil {
		return []Event{RestoreFailed{RequestID: requestID, Reason: verifyErr.Error()}}
	}
	return []Event{RunRestored{RequestID: requestID, BackupVersion: r.Backup.Version, Abandoned: r.abandonedByRestore()}}
}

// FailRestore decides that the pending restore failed for reason, whatever
// the backup holds: what a worker records when it could not carry the
// restore out. It returns no events when the restore is no longer pending.
func (r *Run) FailRestore(requestID, reason string) []Event {
	if r.Restore == nil || r.Restore.ID != requestID || r.Status != StatusRestoring {
		return nil
	}
	return []Event{RestoreFailed{RequestID: requestID, Reason: reason}}
}

// abandonedByRestore lists the current artifacts the backup does not use.
func (r *Run) abandonedByRestore() []Artifact {
	if r.Products == nil || r.Backup == nil {
		return nil
	}
	keep := make(map[string]bool)
	for _, a := range r.Backup.Products.Artifacts {
		keep[a.Digest] = true
	}
	var out []Artifact
	for _, a := range r.Products.Artifacts {
		if !keep[a.Digest] {
			out = append(out, a)
		}
	}
	return out
}
