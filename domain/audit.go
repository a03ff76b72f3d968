package domain

import (
	"fmt"
	"slices"
	"time"
)

// Replay folds recorded events, in order, into a run and returns the state
// after each of them: states[i] is the run after recs[i].
func Replay(recs []Recorded) []Run {
	states := make([]Run, 0, len(recs))
	var r Run
	for _, rec := range recs {
		r.Apply(rec)
		states = append(states, r.Clone())
	}
	return states
}

// StateAt returns the run as it was at stream version v (the zero Run when
// v precedes the stream).
func StateAt(recs []Recorded, v int64) Run {
	var r Run
	for _, rec := range recs {
		if rec.Version > v {
			break
		}
		r.Apply(rec)
	}
	return r
}

// AuditFinding is one problem found by Audit.
type AuditFinding struct {
	Version int64  `json:"version"`
	Problem string `json:"problem"`
}

func (f AuditFinding) String() string { return fmt.Sprintf("version %d: %s", f.Version, f.Problem) }

// Audit replays a run's stream and checks that it is a valid history:
// versions have no gaps, every event was allowed by the state before it, and
// every restore brought back exactly the pre-addition configuration and
// products (the state just before the event that took the backup).
func Audit(recs []Recorded) []AuditFinding {
	var out []AuditFinding
	bad := func(v int64, format string, args ...any) {
		out = append(out, AuditFinding{Version: v, Problem: fmt.Sprintf(format, args...)})
	}
	var prev Run
	byVersion := make(map[int64]Run, len(recs))
	for i, rec := range recs {
		want := int64(1)
		if i > 0 {
			want = recs[i-1].Version + 1
		}
		if rec.Version != want {
			bad(rec.Version, "version gap: expected %d", want)
		}
		switch e := rec.Event.(type) {
		case RunCreated:
			if prev.Exists() {
				bad(rec.Version, "run created while it already existed")
			}
		case ProcessingRequested:
			if busy(prev.Status) {
				bad(rec.Version, "processing requested while %s", prev.Status)
			}
			if e.Mode == ModeAdd && e.Backup == nil {
				bad(rec.Version, "addition without a backup")
			}
			if e.Mode == ModeAdd && e.Backup != nil && e.Backup.Version != rec.Version {
				bad(rec.Version, "backup claims version %d but was taken at version %d", e.Backup.Version, rec.Version)
			}
			if e.Mode == ModeAdd && e.Backup != nil {
				if prev.Products == nil || prev.LastSuccessful == nil {
					bad(rec.Version, "addition to a run that never completed")
				} else if !sameRunContent(*prev.LastSuccessful, *prev.Products, e.Backup.Config, e.Backup.Products) {
					bad(rec.Version, "backup differs from the run before the addition")
				}
			}
		case RestoreRequested:
			if !prev.RestoreAvailable() {
				bad(rec.Version, "restore requested while not restorable (status %s, backup %v)", prev.Status, prev.Backup != nil)
			}
		case RunRestored:
			if prev.Status != StatusRestoring || prev.Restore == nil || prev.Restore.ID != e.RequestID {
				bad(rec.Version, "run restored without a matching pending restore")
				break
			}
			if prev.Backup == nil || e.BackupVersion != prev.Backup.Version || e.BackupVersion != prev.Restore.BackupVersion {
				bad(rec.Version, "restore names backup version %d, but the pending restore and backup are of another version", e.BackupVersion)
			}
			before, ok := byVersion[e.BackupVersion-1]
			if !ok || before.LastSuccessful == nil || before.Products == nil {
				bad(rec.Version, "restore refers to backup version %d, which does not follow a completed run", e.BackupVersion)
				break
			}
			after := prev
			after.Apply(rec)
			if after.LastSuccessful == nil || after.Products == nil ||
				!sameRunContent(*before.LastSuccessful, *before.Products, *after.LastSuccessful, *after.Products) {
				bad(rec.Version, "restore did not bring back the run as it was at version %d", e.BackupVersion-1)
			}
			if after.Backup != nil {
				bad(rec.Version, "backup not consumed by the restore")
			}
		case RestoreFailed:
			if prev.Status != StatusRestoring {
				bad(rec.Version, "restore failure recorded while %s", prev.Status)
			}
		case ProcessingStarted:
			if prev.Job == nil || prev.Job.ID != e.JobID {
				bad(rec.Version, "%s without a matching pending job", rec.Event.EventType())
			}
		case ProcessingCompleted:
			if prev.Job == nil || prev.Job.ID != e.JobID {
				bad(rec.Version, "%s without a matching pending job", rec.Event.EventType())
			}
		case ProcessingFailed:
			if prev.Job == nil || prev.Job.ID != e.JobID {
				bad(rec.Version, "%s without a matching pending job", rec.Event.EventType())
			}
		}
		prev.Apply(rec)
		byVersion[rec.Version] = prev.Clone()
	}
	return out
}

// sameRunContent reports whether two configurations and products are the
// same content: nil and empty lists alike, times compared as instants.
func sameRunContent(c1 RunConfig, p1 Products, c2 RunConfig, p2 Products) bool {
	return sameConfig(c1, c2) && sameProducts(p1, p2)
}

func sameConfig(a, b RunConfig) bool {
	return a.YAML == b.YAML && a.SettingsDigest == b.SettingsDigest &&
		slices.Equal(a.Inputs.Images, b.Inputs.Images) &&
		slices.Equal(a.Inputs.Selavy, b.Inputs.Selavy) &&
		slices.Equal(a.Inputs.Noise, b.Inputs.Noise) &&
		slices.Equal(a.Inputs.Background, b.Inputs.Background) &&
		slices.Equal(a.Inputs.Epochs, b.Inputs.Epochs)
}

func sameProducts(a, b Products) bool {
	return a.Figures == b.Figures && slices.Equal(a.Artifacts, b.Artifacts) &&
		slices.EqualFunc(a.Images, b.Images, func(x, y ImageSummary) bool {
			same := x.DateTime.Equal(y.DateTime)
			x.DateTime, y.DateTime = time.Time{}, time.Time{}
			return same && x == y
		})
}
