package domain_test

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/domain/domaintest"
)

func TestAuditAcceptsValidHistories(t *testing.T) {
	tests := []struct {
		name  string
		build func(*testing.T) *domaintest.Stream
	}{
		{"processed once", domaintest.CompletedRun},
		{"images added then restored", func(t *testing.T) *domaintest.Stream {
			s := domaintest.AddedRun(t)
			s.Restore("restore-1")
			return s
		}},
		{"failed addition restored", func(t *testing.T) *domaintest.Stream {
			s := domaintest.FailedAddition(t)
			s.Restore("restore-1")
			return s
		}},
		{"failed addition retried then restored", func(t *testing.T) *domaintest.Stream {
			s := domaintest.FailedAddition(t)
			s.RequestProcessing("job-3")
			s.Start("job-3")
			s.Complete("job-3", domaintest.Products("epoch01", "epoch02", "epoch03"))
			s.Restore("restore-1")
			return s
		}},
		{"restore failed then succeeded", func(t *testing.T) *domaintest.Stream {
			s := domaintest.AddedRun(t)
			s.RequestRestore("restore-1")
			s.Reported(s.Run.FinishRestore("restore-1", errors.New("artifact missing")))
			s.Restore("restore-2")
			return s
		}},
		{"two additions, restore, addition, restore", func(t *testing.T) *domaintest.Stream {
			s := domaintest.AddedRun(t)
			s.Configure(domaintest.Config(domaintest.Settings, "epoch01", "epoch02", "epoch03", "epoch04"))
			s.Process("job-3", domaintest.Products("epoch01", "epoch02", "epoch03", "epoch04"))
			s.Restore("restore-1")
			s.Configure(domaintest.Config(domaintest.Settings, "epoch01", "epoch02", "epoch03", "epoch05"))
			s.Process("job-4", domaintest.Products("epoch01", "epoch02", "epoch03", "epoch05"))
			s.Happened(domaintest.Worker, domain.LogWritten{Log: "job-4_log.txt", Kind: domain.LogRun, Lines: []string{"2024-05-01 12:00:00,000 INFO done"}})
			s.Restore("restore-2")
			return s
		}},
		{"full re-run after an addition", func(t *testing.T) *domaintest.Stream {
			s := domaintest.AddedRun(t)
			s.Configure(domaintest.Config(domaintest.OtherSettings, "epoch01", "epoch02", "epoch03"))
			s.RequestFullRerun("job-3")
			s.Start("job-3")
			s.Complete("job-3", domaintest.Products("epoch01", "epoch02", "epoch03"))
			return s
		}},
		{"deleted, created again, restored", func(t *testing.T) *domaintest.Stream {
			s := domaintest.AddedRun(t)
			s.Delete()
			s.Create(domaintest.Config(domaintest.Settings, "epoch01", "epoch02"))
			s.Process("job-3", domaintest.Products("epoch01", "epoch02"))
			s.Configure(domaintest.Config(domaintest.Settings, "epoch01", "epoch02", "epoch03"))
			s.Process("job-4", domaintest.Products("epoch01", "epoch02", "epoch03"))
			s.Restore("restore-1")
			return s
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if findings := domain.Audit(tc.build(t).Recs); len(findings) != 0 {
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
			s := domaintest.CompletedRun(t)
			s.Configure(domaintest.Config(domaintest.Settings, "epoch01", "epoch02", "epoch03"))
			ev := domaintest.Single[domain.ProcessingRequested](t, mustEvents(t)(s.Run.RequestProcessing(domaintest.Processing("job-2", false, domaintest.Alice))))
			ev.Backup.Products.Figures.NSources = 1 // consistent enough to restore
			s.Happened(domaintest.Alice, ev)
			s.Start("job-2")
			s.Complete("job-2", domaintest.Products("epoch01", "epoch02", "epoch03"))
			s.Restore("restore-1")
			return s.Recs
		}, []finding{{6, "backup differs"}, {10, "did not bring back"}}},
		{"restored without a restore request", func(t *testing.T) []domain.Recorded {
			s := domaintest.AddedRun(t)
			s.Happened(domaintest.Worker, domain.RunRestored{RequestID: "restore-1", BackupVersion: s.Run.Backup.Version})
			return s.Recs
		}, []finding{{9, "without a matching pending restore"}}},
		{"restored under another request", func(t *testing.T) []domain.Recorded {
			s := domaintest.AddedRun(t)
			s.RequestRestore("restore-1")
			s.Happened(domaintest.Worker, domain.RunRestored{RequestID: "restore-2", BackupVersion: s.Run.Backup.Version})
			return s.Recs
		}, []finding{{10, "without a matching pending restore"}}},
		{"restore names a version before any completed run", func(t *testing.T) []domain.Recorded {
			s := domaintest.AddedRun(t)
			s.RequestRestore("restore-1")
			s.Happened(domaintest.Worker, domain.RunRestored{RequestID: "restore-1", BackupVersion: 2})
			return s.Recs
		}, []finding{{10, "does not follow a completed run"}}},
		{"restore names a version after the addition", func(t *testing.T) []domain.Recorded {
			s := domaintest.AddedRun(t)
			s.RequestRestore("restore-1")
			s.Happened(domaintest.Worker, domain.RunRestored{RequestID: "restore-1", BackupVersion: 9})
			return s.Recs
		}, []finding{{10, "did not bring back the run as it was at version 8"}}},
		{"restore requested without a backup", func(t *testing.T) []domain.Recorded {
			s := domaintest.CompletedRun(t)
			s.Happened(domaintest.Alice, domain.RestoreRequested{RequestID: "restore-1", PreviousStatus: domain.StatusCompleted, BackupVersion: 2})
			return s.Recs
		}, []finding{{5, "not restorable"}}},
		{"restore failure without a restore", func(t *testing.T) []domain.Recorded {
			s := domaintest.AddedRun(t)
			s.Happened(domaintest.Worker, domain.RestoreFailed{RequestID: "restore-1", Reason: "artifact missing"})
			return s.Recs
		}, []finding{{9, "restore failure recorded while Completed"}}},
		{"job started without a request", func(t *testing.T) []domain.Recorded {
			s := domaintest.CompletedRun(t)
			s.Happened(domaintest.Worker, domain.ProcessingStarted{JobID: "job-1"})
			return s.Recs
		}, []finding{{5, "without a matching pending job"}}},
		{"job completed without a request", func(t *testing.T) []domain.Recorded {
			s := domaintest.CompletedRun(t)
			s.Happened(domaintest.Worker, domain.ProcessingCompleted{JobID: "job-1", Products: domaintest.Products("epoch01")})
			return s.Recs
		}, []finding{{5, "without a matching pending job"}}},
		{"job failed without a request", func(t *testing.T) []domain.Recorded {
			s := domaintest.CompletedRun(t)
			s.Happened(domaintest.Worker, domain.ProcessingFailed{JobID: "job-1", Reason: "late"})
			return s.Recs
		}, []finding{{5, "without a matching pending job"}}},
		{"processing requested while running", func(t *testing.T) []domain.Recorded {
			s := domaintest.CompletedRun(t)
			s.RequestFullRerun("job-2")
			s.Start("job-2")
			s.Happened(domaintest.Alice, domain.ProcessingRequested{JobID: "job-3", Mode: domain.ModeFull, Config: s.Run.Config, PreviousStatus: domain.StatusRunning})
			return s.Recs
		}, []finding{{7, "processing requested while Running"}}},
		{"addition without a backup", func(t *testing.T) []domain.Recorded {
			s := domaintest.CompletedRun(t)
			s.Configure(domaintest.Config(domaintest.Settings, "epoch01", "epoch02", "epoch03"))
			s.Happened(domaintest.Alice, domain.ProcessingRequested{JobID: "job-2", Mode: domain.ModeAdd, Config: s.Run.Config, PreviousStatus: domain.StatusCompleted})
			return s.Recs
		}, []finding{{6, "addition without a backup"}}},
		{"addition to a run that never completed", func(t *testing.T) []domain.Recorded {
			s := domaintest.NewStream(t)
			s.Create(domaintest.Config(domaintest.Settings, "epoch01", "epoch02"))
			b := domaintest.PreAddition(2)
			s.Happened(domaintest.Alice, domain.ProcessingRequested{JobID: "job-1", Mode: domain.ModeAdd, Config: s.Run.Config, PreviousStatus: domain.StatusInitialised, Backup: &b})
			return s.Recs
		}, []finding{{2, "never completed"}}},
		{"run created twice", func(t *testing.T) []domain.Recorded {
			s := domaintest.CompletedRun(t)
			s.Happened(domaintest.Alice, domain.RunCreated{Name: domaintest.RunName, Owner: "alice", Config: domaintest.Config(domaintest.Settings, "epoch01")})
			return s.Recs
		}, []finding{{5, "already existed"}}},
		{"version missing", func(t *testing.T) []domain.Recorded {
			recs := domaintest.AddedRun(t).Recs
			return slices.Delete(recs, 4, 5)
		}, []finding{{6, "expected 5"}}},
		{"version repeated", func(t *testing.T) []domain.Recorded {
			recs := domaintest.CompletedRun(t).Recs
			return slices.Insert(recs, 2, recs[1])
		}, []finding{{2, "expected 3"}}},
		{"stream not starting at version 1", func(t *testing.T) []domain.Recorded {
			return domaintest.CompletedRun(t).Recs[1:]
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
	recs := domaintest.AddedRun(t).Recs
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
	s := domaintest.AddedRun(t)
	s.Restore("restore-1")
	states := domain.Replay(s.Recs)
	if len(states) != len(s.Recs) {
		t.Fatalf("%d states for %d events", len(states), len(s.Recs))
	}
	for i, rec := range s.Recs {
		if got, want := domaintest.Snapshot(t, states[i]), domaintest.Snapshot(t, domain.StateAt(s.Recs, rec.Version)); !reflect.DeepEqual(got, want) {
			t.Errorf("version %d: Replay gives\n%s\nStateAt gives\n%s", rec.Version, domaintest.JSONString(t, got), domaintest.JSONString(t, want))
		}
	}
	if got, want := domaintest.Snapshot(t, states[len(states)-1]), domaintest.Snapshot(t, s.Run); !reflect.DeepEqual(got, want) {
		t.Errorf("replayed run differs from the folded one:\n%s\nwant\n%s", domaintest.JSONString(t, got), domaintest.JSONString(t, want))
	}
	// The state before the addition (version 5) is what the restore brought back.
	pre := domain.StateAt(s.Recs, 5)
	if !reflect.DeepEqual(*pre.Products, *s.Run.Products) || !reflect.DeepEqual(*pre.LastSuccessful, *s.Run.LastSuccessful) {
		t.Error("the restored run differs from the run before the addition")
	}
	if zero := domain.StateAt(s.Recs, 0); zero.Exists() || zero.Version != 0 {
		t.Errorf("state before the stream: %+v", zero)
	}
	// States must not share memory: editing one leaves the others alone.
	states[3].Products.Artifacts[0].Digest = "sha256:edited"
	if states[4].Products.Artifacts[0].Digest == "sha256:edited" {
		t.Error("replayed states share memory")
	}
}
