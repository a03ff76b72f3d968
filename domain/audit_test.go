package domain_test

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/piperun/piperun/domain"
)

func TestAuditAcceptsValidHistories(t *testing.T) {
	tests := []struct {
		name  string
		build func(*testing.T) *stream
	}{
		{"processed once", completedRun},
		{"images added then restored", func(t *testing.T) *stream {
			s := addedRun(t)
			s.restore("restore-1")
			return s
		}},
		{"failed addition restored", func(t *testing.T) *stream {
			s := failedAddition(t)
			s.restore("restore-1")
			return s
		}},
		{"failed addition retried then restored", func(t *testing.T) *stream {
			s := failedAddition(t)
			s.requestProcessing("job-3")
			s.start("job-3")
			s.complete("job-3", products("epoch01", "epoch02", "epoch03"))
			s.restore("restore-1")
			return s
		}},
		{"restore failed then succeeded", func(t *testing.T) *stream {
			s := addedRun(t)
			s.requestRestore("restore-1")
			s.reported(s.run.FinishRestore("restore-1", errors.New("artifact missing")))
			s.restore("restore-2")
			return s
		}},
		{"two additions, restore, addition, restore", func(t *testing.T) *stream {
			s := addedRun(t)
			s.configure(config(settings, "epoch01", "epoch02", "epoch03", "epoch04"))
			s.process("job-3", products("epoch01", "epoch02", "epoch03", "epoch04"))
			s.restore("restore-1")
			s.configure(config(settings, "epoch01", "epoch02", "epoch03", "epoch05"))
			s.process("job-4", products("epoch01", "epoch02", "epoch03", "epoch05"))
			s.happened(worker, domain.LogWritten{Log: "job-4_log.txt", Kind: domain.LogRun, Lines: []string{"2024-05-01 12:00:00,000 INFO done"}})
			s.restore("restore-2")
			return s
		}},
		{"full re-run after an addition", func(t *testing.T) *stream {
			s := addedRun(t)
			s.configure(config(otherSettings, "epoch01", "epoch02", "epoch03"))
			s.requestFullRerun("job-3")
			s.start("job-3")
			s.complete("job-3", products("epoch01", "epoch02", "epoch03"))
			return s
		}},
		{"deleted, created again, restored", func(t *testing.T) *stream {
			s := addedRun(t)
			s.delete()
			s.create(config(settings, "epoch01", "epoch02"))
			s.process("job-3", products("epoch01", "epoch02"))
			s.configure(config(settings, "epoch01", "epoch02", "epoch03"))
			s.process("job-4", products("epoch01", "epoch02", "epoch03"))
			s.restore("restore-1")
			return s
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if findings := domain.Audit(tc.build(t).recs); len(findings) != 0 {
				t.Errorf("findings in a valid history: %v", findings)
			}
		})
	}
}

// finding is a problem Audit must report: at a version, with words of its
// description.
type finding struct {
	version int64
	problem string
}

func TestAuditFindsForgeries(t *testing.T) {
	tests := []struct {
		name  string
		build func(*testing.T) []domain.Recorded
		want  []finding
	}{
		{"restore of a tampered backup", func(t *testing.T) []domain.Recorded {
			s := completedRun(t)
			s.configure(config(settings, "epoch01", "epoch02", "epoch03"))
			ev := single[domain.ProcessingRequested](t, mustEvents(t)(s.run.RequestProcessing(processing("job-2", false, alice))))
			ev.Backup.Products.Figures.NSources = 1 // consistent enough to restore
			s.happened(alice, ev)
			s.start("job-2")
			s.complete("job-2", products("epoch01", "epoch02", "epoch03"))
			s.restore("restore-1")
			return s.recs
		}, []finding{{6, "backup differs"}, {10, "did not bring back"}}},
		{"restored without a restore request", func(t *testing.T) []domain.Recorded {
			s := addedRun(t)
			s.happened(worker, domain.RunRestored{RequestID: "restore-1", BackupVersion: s.run.Backup.Version})
			return s.recs
		}, []finding{{9, "without a matching pending restore"}}},
		{"restored under another request", func(t *testing.T) []domain.Recorded {
			s := addedRun(t)
			s.requestRestore("restore-1")
			s.happened(worker, domain.RunRestored{RequestID: "restore-2", BackupVersion: s.run.Backup.Version})
			return s.recs
		}, []finding{{10, "without a matching pending restore"}}},
		{"restore names a version before any completed run", func(t *testing.T) []domain.Recorded {
			s := addedRun(t)
			s.requestRestore("restore-1")
			s.happened(worker, domain.RunRestored{RequestID: "restore-1", BackupVersion: 2})
			return s.recs
		}, []finding{{10, "does not follow a completed run"}}},
		{"restore names a version after the addition", func(t *testing.T) []domain.Recorded {
			s := addedRun(t)
			s.requestRestore("restore-1")
			s.happened(worker, domain.RunRestored{RequestID: "restore-1", BackupVersion: 9})
			return s.recs
		}, []finding{{10, "did not bring back the run as it was at version 8"}}},
		{"restore requested without a backup", func(t *testing.T) []domain.Recorded {
			s := completedRun(t)
			s.happened(alice, domain.RestoreRequested{RequestID: "restore-1", PreviousStatus: domain.StatusCompleted, BackupVersion: 2})
			return s.recs
		}, []finding{{5, "not restorable"}}},
		{"restore failure without a restore", func(t *testing.T) []domain.Recorded {
			s := addedRun(t)
			s.happened(worker, domain.RestoreFailed{RequestID: "restore-1", Reason: "artifact missing"})
			return s.recs
		}, []finding{{9, "restore failure recorded while Completed"}}},
		{"job started without a request", func(t *testing.T) []domain.Recorded {
			s := completedRun(t)
			s.happened(worker, domain.ProcessingStarted{JobID: "job-1"})
			return s.recs
		}, []finding{{5, "without a matching pending job"}}},
		{"job completed without a request", func(t *testing.T) []domain.Recorded {
			s := completedRun(t)
			s.happened(worker, domain.ProcessingCompleted{JobID: "job-1", Products: products("epoch01")})
			return s.recs
		}, []finding{{5, "without a matching pending job"}}},
		{"job failed without a request", func(t *testing.T) []domain.Recorded {
			s := completedRun(t)
			s.happened(worker, domain.ProcessingFailed{JobID: "job-1", Reason: "late"})
			return s.recs
		}, []finding{{5, "without a matching pending job"}}},
		{"processing requested while running", func(t *testing.T) []domain.Recorded {
			s := completedRun(t)
			s.requestFullRerun("job-2")
			s.start("job-2")
			s.happened(alice, domain.ProcessingRequested{JobID: "job-3", Mode: domain.ModeFull, Config: s.run.Config, PreviousStatus: domain.StatusRunning})
			return s.recs
		}, []finding{{7, "processing requested while Running"}}},
		{"addition without a backup", func(t *testing.T) []domain.Recorded {
			s := completedRun(t)
			s.configure(config(settings, "epoch01", "epoch02", "epoch03"))
			s.happened(alice, domain.ProcessingRequested{JobID: "job-2", Mode: domain.ModeAdd, Config: s.run.Config, PreviousStatus: domain.StatusCompleted})
			return s.recs
		}, []finding{{6, "addition without a backup"}}},
		{"addition to a run that never completed", func(t *testing.T) []domain.Recorded {
			s := newStream(t)
			s.create(config(settings, "epoch01", "epoch02"))
			b := preAddition(2)
			s.happened(alice, domain.ProcessingRequested{JobID: "job-1", Mode: domain.ModeAdd, Config: s.run.Config, PreviousStatus: domain.StatusInitialised, Backup: &b})
			return s.recs
		}, []finding{{2, "never completed"}}},
		{"run created twice", func(t *testing.T) []domain.Recorded {
			s := completedRun(t)
			s.happened(alice, domain.RunCreated{Name: runName, Owner: "alice", Config: config(settings, "epoch01")})
			return s.recs
		}, []finding{{5, "already existed"}}},
		{"version missing", func(t *testing.T) []domain.Recorded {
			recs := addedRun(t).recs
			return slices.Delete(recs, 4, 5)
		}, []finding{{6, "expected 5"}}},
		{"version repeated", func(t *testing.T) []domain.Recorded {
			recs := completedRun(t).recs
			return slices.Insert(recs, 2, recs[1])
		}, []finding{{2, "expected 3"}}},
		{"stream not starting at version 1", func(t *testing.T) []domain.Recorded {
			return completedRun(t).recs[1:]
		}, []finding{{2, "expected 1"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			findings := domain.Audit(tc.build(t))
			for _, w := range tc.want {
				if !slices.ContainsFunc(findings, func(f domain.AuditFinding) bool {
					return f.Version == w.version && strings.Contains(f.Problem, w.problem)
				}) {
					t.Errorf("no finding %q at version %d in %v", w.problem, w.version, findings)
				}
			}
		})
	}
}

// TestAuditReportsEachGapOnce: the events after a gap follow on from the
// last version read, so they are not gaps themselves.
func TestAuditReportsEachGapOnce(t *testing.T) {
	recs := addedRun(t).recs
	recs = slices.Delete(recs, 4, 5)
	var gaps []domain.AuditFinding
	for _, f := range domain.Audit(recs) {
		if strings.Contains(f.Problem, "gap") {
			gaps = append(gaps, f)
		}
	}
	if len(gaps) != 1 || gaps[0].Version != 6 {
		t.Errorf("gap findings %v, want one at version 6", gaps)
	}
}

func TestReplayAndStateAt(t *testing.T) {
	s := addedRun(t)
	s.restore("restore-1")
	states := domain.Replay(s.recs)
	if len(states) != len(s.recs) {
		t.Fatalf("%d states for %d events", len(states), len(s.recs))
	}
	for i, rec := range s.recs {
		if got, want := snapshot(t, states[i]), snapshot(t, domain.StateAt(s.recs, rec.Version)); !reflect.DeepEqual(got, want) {
			t.Errorf("version %d: Replay gives\n%s\nStateAt gives\n%s", rec.Version, jsonString(t, got), jsonString(t, want))
		}
	}
	if got, want := snapshot(t, states[len(states)-1]), snapshot(t, s.run); !reflect.DeepEqual(got, want) {
		t.Errorf("replayed run differs from the folded one:\n%s\nwant\n%s", jsonString(t, got), jsonString(t, want))
	}
	// The state before the addition (version 5) is what the restore brought back.
	pre := domain.StateAt(s.recs, 5)
	if !reflect.DeepEqual(*pre.Products, *s.run.Products) || !reflect.DeepEqual(*pre.LastSuccessful, *s.run.LastSuccessful) {
		t.Error("the restored run differs from the run before the addition")
	}
	if zero := domain.StateAt(s.recs, 0); zero.Exists() || zero.Version != 0 {
		t.Errorf("state before the stream: %+v", zero)
	}
	// States must not share memory: editing one leaves the others alone.
	states[3].Products.Artifacts[0].Digest = "sha256:edited"
	if states[4].Products.Artifacts[0].Digest == "sha256:edited" {
		t.Error("replayed states share memory")
	}
}
