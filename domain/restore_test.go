package domain_test

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/piperun/piperun/domain"
)

func TestRequestRestoreRefused(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(*testing.T) *stream
		actor  domain.Actor
		want   error
		reason string // part of the error message that says why
	}{
		{name: "never had images added", setup: completedRun, actor: alice, want: domain.ErrNotRestorable, reason: "backup"},
		{name: "never processed", setup: func(t *testing.T) *stream {
			s := newStream(t)
			s.create(config(settings, "epoch01"))
			return s
		}, actor: alice, want: domain.ErrNotRestorable, reason: string(domain.StatusInitialised)},
		{name: "addition queued", setup: func(t *testing.T) *stream {
			s := completedRun(t)
			s.configure(config(settings, "epoch01", "epoch02", "epoch03"))
			s.requestProcessing("job-2")
			return s
		}, actor: alice, want: domain.ErrNotRestorable, reason: string(domain.StatusQueued)},
		{name: "addition running", setup: func(t *testing.T) *stream {
			s := completedRun(t)
			s.configure(config(settings, "epoch01", "epoch02", "epoch03"))
			s.requestProcessing("job-2")
			s.start("job-2")
			return s
		}, actor: alice, want: domain.ErrNotRestorable, reason: string(domain.StatusRunning)},
		{name: "already restoring", setup: func(t *testing.T) *stream {
			s := addedRun(t)
			s.requestRestore("restore-1")
			return s
		}, actor: alice, want: domain.ErrNotRestorable, reason: string(domain.StatusRestoring)},
		{name: "being deleted", setup: func(t *testing.T) *stream {
			s := addedRun(t)
			s.accepted(s.run.RequestDeletion(alice))
			return s
		}, actor: alice, want: domain.ErrNotRestorable, reason: string(domain.StatusDeleting)},
		{name: "backup used up", setup: func(t *testing.T) *stream {
			s := addedRun(t)
			s.restore("restore-1")
			return s
		}, actor: alice, want: domain.ErrNotRestorable, reason: "backup"},
		{name: "full re-run after an addition", setup: func(t *testing.T) *stream {
			s := addedRun(t)
			s.requestFullRerun("job-3")
			s.start("job-3")
			s.complete("job-3", products("epoch01", "epoch02", "epoch03"))
			return s
		}, actor: alice, want: domain.ErrNotRestorable, reason: "backup"},
		{name: "deleted", setup: func(t *testing.T) *stream {
			s := addedRun(t)
			s.delete()
			return s
		}, actor: alice, want: domain.ErrNotFound},
		{name: "by someone else", setup: addedRun, actor: bob, want: domain.ErrForbidden},
		{name: "anonymous", setup: addedRun, actor: domain.Actor{}, want: domain.ErrForbidden},
		{name: "by the creator", setup: addedRun, actor: alice},
		{name: "by an administrator", setup: addedRun, actor: admin},
		{name: "after a failed addition", setup: failedAddition, actor: alice},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.setup(t)
			events, err := s.run.RequestRestore(restoring("restore-9", tc.actor))
			checkErr(t, err, tc.want)
			if err != nil {
				if !strings.Contains(err.Error(), tc.reason) {
					t.Errorf("error %q does not say why (%q)", err, tc.reason)
				}
				return
			}
			got := single[domain.RestoreRequested](t, events)
			want := domain.RestoreRequested{
				RequestID: "restore-9", Log: "restore-9_restore_log.txt",
				PreviousStatus: s.run.Status, BackupVersion: s.run.Backup.Version,
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

func TestRestore(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(*testing.T) *stream
		abandoned []domain.Artifact
	}{
		{"after an addition", addedRun, []domain.Artifact{measurements("epoch03"), sources("epoch01", "epoch02", "epoch03")}},
		{"after an addition and a later edit", func(t *testing.T) *stream {
			s := addedRun(t)
			s.configure(config(settings, "epoch01", "epoch02", "epoch03", "epoch04"))
			return s
		}, []domain.Artifact{measurements("epoch03"), sources("epoch01", "epoch02", "epoch03")}},
		{"after a failed addition", failedAddition, nil},
		{"after a retried addition", func(t *testing.T) *stream {
			s := failedAddition(t)
			s.requestProcessing("job-3")
			s.start("job-3")
			s.complete("job-3", products("epoch01", "epoch02", "epoch03"))
			return s
		}, []domain.Artifact{measurements("epoch03"), sources("epoch01", "epoch02", "epoch03")}},
		{"by an administrator", func(t *testing.T) *stream {
			s := addedRun(t)
			s.happened(admin, mustEvents(t)(s.run.RequestRestore(restoring("restore-1", admin)))...)
			return s
		}, []domain.Artifact{measurements("epoch03"), sources("epoch01", "epoch02", "epoch03")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.setup(t)
			if s.run.Restore == nil {
				s.requestRestore("restore-1")
			}
			backupVersion := s.run.Backup.Version
			got := single[domain.RunRestored](t, s.run.FinishRestore("restore-1", nil))
			want := domain.RunRestored{RequestID: "restore-1", BackupVersion: backupVersion, Abandoned: tc.abandoned}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got\n%s\nwant\n%s", jsonString(t, got), jsonString(t, want))
			}
			s.happened(worker, got)

			r := s.run
			pre := preAddition(backupVersion)
			if r.Status != domain.StatusCompleted {
				t.Errorf("status %s, want %s", r.Status, domain.StatusCompleted)
			}
			if !reflect.DeepEqual(r.Config, pre.Config) {
				t.Errorf("config not restored: %s", jsonString(t, r.Config))
			}
			if r.LastSuccessful == nil || !reflect.DeepEqual(*r.LastSuccessful, pre.Config) {
				t.Errorf("last successful config not restored: %s", jsonString(t, r.LastSuccessful))
			}
			if r.Products == nil || !reflect.DeepEqual(*r.Products, pre.Products) {
				t.Errorf("products not restored: %s", jsonString(t, r.Products))
			}
			if r.Figures() != pre.Products.Figures {
				t.Errorf("figures %+v, want %+v", r.Figures(), pre.Products.Figures)
			}
			if r.Backup != nil || r.Restore != nil || r.RestoreAvailable() {
				t.Errorf("backup not consumed: backup %v, pending restore %v", r.Backup != nil, r.Restore != nil)
			}
		})
	}
}

// mustEvents adapts a decision that must succeed to a list of its events.
func mustEvents(t *testing.T) func([]domain.Event, error) []domain.Event {
	return func(events []domain.Event, err error) []domain.Event {
		t.Helper()
		checkErr(t, err, nil)
		return events
	}
}

func TestRestoreRecordsRequester(t *testing.T) {
	s := addedRun(t)
	s.happened(admin, mustEvents(t)(s.run.RequestRestore(restoring("restore-1", admin)))...)
	want := domain.PendingRestore{
		ID: "restore-1", Log: "restore-1_restore_log.txt", PreviousStatus: domain.StatusCompleted,
		BackupVersion: s.run.Backup.Version, RequestedBy: admin.Name,
	}
	if s.run.Restore == nil || *s.run.Restore != want {
		t.Errorf("pending restore %+v, want %+v", s.run.Restore, want)
	}
}

func TestBackupUsedUpUntilNextAddition(t *testing.T) {
	s := addedRun(t)
	s.restore("restore-1")
	_, err := s.run.RequestRestore(restoring("restore-2", alice))
	checkErr(t, err, domain.ErrNotRestorable)

	s.configure(config(settings, "epoch01", "epoch02", "epoch04"))
	s.process("job-3", products("epoch01", "epoch02", "epoch04"))
	s.restore("restore-3")
	if !reflect.DeepEqual(*s.run.Products, products("epoch01", "epoch02")) {
		t.Errorf("second restore brought back %s", jsonString(t, s.run.Products))
	}
}

func TestFailedAdditionIsRestorable(t *testing.T) {
	s := failedAddition(t)
	r := s.run
	if r.Status != domain.StatusError {
		t.Fatalf("status %s, want %s", r.Status, domain.StatusError)
	}
	if want := preAddition(r.Backup.Version); !reflect.DeepEqual(*r.Backup, want) {
		t.Errorf("backup\n%s\nwant\n%s", jsonString(t, r.Backup), jsonString(t, want))
	}
	if !reflect.DeepEqual(*r.Products, products("epoch01", "epoch02")) {
		t.Errorf("a failed addition changed the products: %s", jsonString(t, r.Products))
	}
	if !r.RestoreAvailable() {
		t.Error("a failed addition is not restorable")
	}
}

// inconsistentBackup is a run whose backup lists other images in its
// products than in its configuration, as a faulty worker could leave it.
func inconsistentBackup(got ...string) func(*testing.T) *stream {
	return func(t *testing.T) *stream {
		s := newStream(t)
		s.create(config(settings, "epoch01", "epoch02"))
		s.process("job-1", products(got...))
		s.configure(config(settings, "epoch01", "epoch02", "epoch03"))
		s.process("job-2", products("epoch01", "epoch02", "epoch03"))
		return s
	}
}

func TestRestoreFailureChangesNothing(t *testing.T) {
	verifyErr := errors.New("artifact sha256:meas-epoch01 is missing")
	tests := []struct {
		name   string
		setup  func(*testing.T) *stream
		verify error
		// retryable: the backup itself is sound, so a later restore whose
		// verification passes succeeds.
		retryable bool
	}{
		{"verification fails on a completed run", addedRun, verifyErr, true},
		{"verification fails after a failed addition", failedAddition, verifyErr, true},
		{"backup misses an image of its configuration", inconsistentBackup("epoch01"), nil, false},
		{"backup holds another image than its configuration", inconsistentBackup("epoch01", "epoch09"), nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.setup(t)
			before := snapshot(t, s.run)
			s.requestRestore("restore-1")
			requested := s.recs[len(s.recs)-1]

			failed := single[domain.RestoreFailed](t, s.run.FinishRestore("restore-1", tc.verify))
			if failed.RequestID != "restore-1" || failed.Reason == "" {
				t.Errorf("failure %+v names no request or reason", failed)
			}
			if tc.verify != nil && !strings.Contains(failed.Reason, tc.verify.Error()) {
				t.Errorf("reason %q does not say why verification failed", failed.Reason)
			}
			s.happened(worker, failed)
			after := snapshot(t, s.run)

			if after.Status != before.Status {
				t.Errorf("status %s, want %s", after.Status, before.Status)
			}
			if !after.RestoreAvailable() {
				t.Error("the run is no longer restorable")
			}
			// The restore's log stays, so that the user can read why it failed.
			wantLogs := append(before.Logs, domain.LogRef{Name: "restore-1_restore_log.txt", Kind: domain.LogRestore, Created: requested.Time})
			if !reflect.DeepEqual(after.Logs, wantLogs) {
				t.Errorf("logs %+v, want %+v", after.Logs, wantLogs)
			}
			for _, r := range []*domain.Run{&before, &after} {
				r.Version, r.Updated, r.Restore, r.Logs = 0, time.Time{}, nil, nil
			}
			if !reflect.DeepEqual(after, before) {
				t.Errorf("a failed restore changed the run:\n%s\nwas\n%s", jsonString(t, after), jsonString(t, before))
			}

			if tc.retryable {
				s.restore("restore-2")
				if !reflect.DeepEqual(*s.run.Products, products("epoch01", "epoch02")) {
					t.Errorf("retried restore brought back %s", jsonString(t, s.run.Products))
				}
			}
		})
	}
}

func TestRestoreWithoutBackupFails(t *testing.T) {
	s := addedRun(t)
	s.requestRestore("restore-1")
	r := s.run
	r.Backup = nil // not reachable by events; FinishRestore must still not restore
	failed := single[domain.RestoreFailed](t, r.FinishRestore("restore-1", nil))
	if failed.Reason == "" {
		t.Error("no reason given")
	}
}

// TestRedeliveryIsIgnored: workers may see a message again after its outcome
// was recorded; deciding on it again must record nothing.
func TestRedeliveryIsIgnored(t *testing.T) {
	done := products("epoch01", "epoch02")
	tests := []struct {
		name   string
		setup  func(*testing.T) *stream
		decide func(r *domain.Run) []domain.Event
	}{
		{"start of an unknown job", completedRun, func(r *domain.Run) []domain.Event { return r.StartProcessing("job-9") }},
		{"start of a started job", func(t *testing.T) *stream {
			s := completedRun(t)
			s.requestFullRerun("job-2")
			s.start("job-2")
			return s
		}, func(r *domain.Run) []domain.Event { return r.StartProcessing("job-2") }},
		{"start of a completed job", completedRun, func(r *domain.Run) []domain.Event { return r.StartProcessing("job-1") }},
		{"start of a failed job", failedAddition, func(r *domain.Run) []domain.Event { return r.StartProcessing("job-2") }},
		{"start of another job than the queued one", func(t *testing.T) *stream {
			s := completedRun(t)
			s.requestFullRerun("job-2")
			return s
		}, func(r *domain.Run) []domain.Event { return r.StartProcessing("job-1") }},
		{"end of an unknown job", completedRun, func(r *domain.Run) []domain.Event { return r.FinishProcessing("job-9", &done, nil) }},
		{"end of a completed job", completedRun, func(r *domain.Run) []domain.Event { return r.FinishProcessing("job-1", &done, nil) }},
		{"failure of a completed job", completedRun, func(r *domain.Run) []domain.Event {
			return r.FinishProcessing("job-1", nil, errors.New("late failure"))
		}},
		{"end of a failed job", failedAddition, func(r *domain.Run) []domain.Event { return r.FinishProcessing("job-2", &done, nil) }},
		{"end of an old job while a new one runs", func(t *testing.T) *stream {
			s := completedRun(t)
			s.requestFullRerun("job-2")
			s.start("job-2")
			return s
		}, func(r *domain.Run) []domain.Event { return r.FinishProcessing("job-1", &done, nil) }},
		{"end of an unknown restore", func(t *testing.T) *stream {
			s := addedRun(t)
			s.requestRestore("restore-1")
			return s
		}, func(r *domain.Run) []domain.Event { return r.FinishRestore("restore-9", nil) }},
		{"end of a finished restore", func(t *testing.T) *stream {
			s := addedRun(t)
			s.restore("restore-1")
			return s
		}, func(r *domain.Run) []domain.Event { return r.FinishRestore("restore-1", nil) }},
		{"end of a failed restore", func(t *testing.T) *stream {
			s := addedRun(t)
			s.requestRestore("restore-1")
			s.reported(s.run.FinishRestore("restore-1", errors.New("artifact missing")))
			return s
		}, func(r *domain.Run) []domain.Event { return r.FinishRestore("restore-1", nil) }},
		{"restore never requested", addedRun, func(r *domain.Run) []domain.Event { return r.FinishRestore("restore-1", nil) }},
		{"deletion never requested", completedRun, func(r *domain.Run) []domain.Event { return r.FinishDeletion() }},
		{"deletion already done", func(t *testing.T) *stream {
			s := completedRun(t)
			s.delete()
			return s
		}, func(r *domain.Run) []domain.Event { return r.FinishDeletion() }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.setup(t)
			if events := tc.decide(&s.run); len(events) != 0 {
				t.Errorf("got events %+v, want none", events)
			}
		})
	}
}

func TestFinishProcessing(t *testing.T) {
	p := products("epoch01", "epoch02")
	tests := []struct {
		name     string
		products *domain.Products
		failure  error
		want     domain.Event
	}{
		{"products", &p, nil, domain.ProcessingCompleted{JobID: "job-1", Products: p}},
		{"failure", nil, errors.New("no sources found"), domain.ProcessingFailed{JobID: "job-1", Reason: "no sources found"}},
		{"failure despite products", &p, errors.New("disk full"), domain.ProcessingFailed{JobID: "job-1", Reason: "disk full"}},
		{"neither", nil, nil, domain.ProcessingFailed{JobID: "job-1", Reason: "the job produced no products"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStream(t)
			s.create(config(settings, "epoch01", "epoch02"))
			s.requestProcessing("job-1")
			events := s.run.FinishProcessing("job-1", tc.products, tc.failure)
			if len(events) != 1 || !reflect.DeepEqual(events[0], tc.want) {
				t.Errorf("got %+v, want %+v", events, tc.want)
			}
		})
	}
}

func TestFullRerunDiscardsHistory(t *testing.T) {
	s := addedRun(t)
	s.configure(config(otherSettings, "epoch01", "epoch02", "epoch03"))
	s.requestFullRerun("job-3")
	r := s.run
	if r.Status != domain.StatusQueued || r.Job == nil || r.Job.Mode != domain.ModeFull {
		t.Fatalf("status %s, job %+v", r.Status, r.Job)
	}
	if r.Products != nil || r.LastSuccessful != nil || r.Backup != nil {
		t.Errorf("a full re-run kept products %v, last successful config %v, backup %v",
			r.Products != nil, r.LastSuccessful != nil, r.Backup != nil)
	}
	if r.Figures() != (domain.Figures{}) {
		t.Errorf("figures %+v without products", r.Figures())
	}
}

func TestAdditionRequiresCompletedRun(t *testing.T) {
	// Error without a backup cannot be reached through decisions today (a
	// failed full run also drops the last successful config), so the state
	// is set by hand: a run whose last processing failed outside an addition.
	s := completedRun(t)
	s.configure(config(settings, "epoch01", "epoch02", "epoch03"))
	r := s.run
	r.Status = domain.StatusError

	_, err := r.RequestProcessing(processing("job-2", false, alice))
	checkErr(t, err, domain.ErrConflict)
	events, err := r.RequestProcessing(processing("job-2", true, alice))
	checkErr(t, err, nil)
	if mode := single[domain.ProcessingRequested](t, events).Mode; mode != domain.ModeFull {
		t.Errorf("mode %s, want %s", mode, domain.ModeFull)
	}
}

func TestRetryFailedAddition(t *testing.T) {
	s := failedAddition(t)
	events, err := s.run.RequestProcessing(processing("job-3", false, alice))
	checkErr(t, err, nil)
	ev := single[domain.ProcessingRequested](t, events)
	if ev.Mode != domain.ModeAdd || ev.PreviousStatus != domain.StatusError {
		t.Errorf("mode %s from %s, want %s from %s", ev.Mode, ev.PreviousStatus, domain.ModeAdd, domain.StatusError)
	}
	if want := preAddition(s.version() + 1); ev.Backup == nil || !reflect.DeepEqual(*ev.Backup, want) {
		t.Errorf("backup\n%s\nwant\n%s", jsonString(t, ev.Backup), jsonString(t, want))
	}
}

func TestBackupIsACopy(t *testing.T) {
	s := completedRun(t)
	s.configure(config(settings, "epoch01", "epoch02", "epoch03"))
	events, err := s.run.RequestProcessing(processing("job-2", false, alice))
	checkErr(t, err, nil)
	ev := single[domain.ProcessingRequested](t, events)
	ev.Backup.Products.Artifacts[0].Digest = "sha256:tampered"
	ev.Backup.Config.Inputs.Images[0] = "img/tampered.fits"
	if s.run.Products.Artifacts[0].Digest == "sha256:tampered" || s.run.LastSuccessful.Inputs.Images[0] == "img/tampered.fits" {
		t.Fatal("the backup in the event shares memory with the run")
	}
	s.happened(alice, ev)
	ev.Backup.Products.Artifacts[1].Digest = "sha256:tampered-later"
	if slices.ContainsFunc(s.run.Backup.Products.Artifacts, func(a domain.Artifact) bool { return a.Digest == "sha256:tampered-later" }) {
		t.Fatal("the run's backup shares memory with the event")
	}
}

func TestDeletion(t *testing.T) {
	t.Run("permissions", func(t *testing.T) {
		for _, tc := range []struct {
			actor domain.Actor
			want  error
		}{{alice, nil}, {admin, nil}, {bob, domain.ErrForbidden}} {
			r := completedRun(t).run
			_, err := r.RequestDeletion(tc.actor)
			checkErr(t, err, tc.want)
		}
	})
	t.Run("artifacts of products and backup", func(t *testing.T) {
		s := addedRun(t)
		s.accepted(s.run.RequestDeletion(alice))
		got := single[domain.RunDeleted](t, s.run.FinishDeletion())
		want := append(products("epoch01", "epoch02", "epoch03").Artifacts, products("epoch01", "epoch02").Artifacts...)
		if !reflect.DeepEqual(got.Artifacts, want) {
			t.Errorf("artifacts %+v, want %+v", got.Artifacts, want)
		}
	})
	t.Run("deleted run is gone", func(t *testing.T) {
		s := completedRun(t)
		s.delete()
		if s.run.Exists() {
			t.Fatal("deleted run exists")
		}
		_, err := s.run.RequestDeletion(alice)
		checkErr(t, err, domain.ErrNotFound)
	})
}
