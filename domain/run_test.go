package domain_test

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/domain/domaintest"
)

func TestValidateRunName(t *testing.T) {
	tests := []struct {
		name string
		run  string
		// want is part of the error message; "" means the name is valid.
		want string
	}{
		{"ordinary", "vast_pilot-epoch.1", ""},
		{"starts with a digit", "1st-run", ""},
		{"upper case", "VAST_Pilot", ""},
		{"64 characters", strings.Repeat("a", 64), ""},
		{"65 characters", strings.Repeat("a", 65), "65 characters long; at most 64"},
		{"empty", "", "run name is empty"},
		{"dot", ".", `starts with '.'`},
		{"dot dot", "..", `starts with '.'`},
		{"leading dash", "-rf", `starts with '-'`},
		{"leading underscore", "_x", `starts with '_'`},
		{"space", "vast pilot", "character ' ' (space) at position 5"},
		{"tab", "vast\tpilot", "character U+0009 (tab) at position 5"},
		{"newline", "vast\npilot", "character U+000A (line feed) at position 5"},
		{"delete", "vast\x7fpilot", "character U+007F (delete) at position 5"},
		{"invalid UTF-8", "vast\xffpilot", "not valid UTF-8 (byte 0xFF at position 5)"},
		{"slash", "vast/pilot", "character '/' at position 5"},
		// Names that look like another: each is refused, naming the
		// invisible or look-alike character and where it is.
		{"zero-width space", "vast\u200bpilot", "character U+200B (zero-width space) at position 5"},
		{"no-break space", "vast\u00a0pilot", "character U+00A0 (no-break space) at position 5"},
		{"right-to-left override", "vast\u202epilot", "character U+202E (right-to-left override) at position 5"},
		{"byte-order mark", "\ufeffvast", "character U+FEFF (byte-order mark) at position 1"},
		{"line separator", "vast\u2028pilot", "character U+2028 (line separator) at position 5"},
		{"composed e-acute", "caf\u00e9", "character U+00E9 at position 4"},
		{"decomposed e-acute", "cafe\u0301", "character U+0301 (combining acute accent) at position 5"},
		{"Cyrillic a", "v\u0430st", "character U+0430 at position 2"},
	}
	for _, c := range "[@!#$%^&*()<>?/\\|}{~:]" {
		tests = append(tests, struct {
			name string
			run  string
			want string
		}{fmt.Sprintf("contains %q", c), "vast" + string(c) + "pilot", fmt.Sprintf("character %q at position 5", c)})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := domain.ValidateRunName(tc.run)
			if tc.want == "" {
				domaintest.CheckErr(t, err, nil)
				return
			}
			domaintest.CheckErr(t, err, domain.ErrInvalid)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			// The message states the rule, and shows the name with every
			// non-ASCII character escaped, so that it cannot hide one.
			if !strings.Contains(err.Error(), "ASCII letters, digits") && !strings.Contains(err.Error(), "at most") {
				t.Errorf("error %q does not state the rule", err)
			}
			if strings.ContainsFunc(err.Error(), func(r rune) bool { return r >= 0x7f || r < 0x20 }) {
				t.Errorf("error %+q shows a non-ASCII or control character", err.Error())
			}
		})
	}
}

func TestValidateDescription(t *testing.T) {
	tests := []struct {
		name        string
		description string
		want        string
	}{
		{"empty", "", ""},
		{"240 characters", strings.Repeat("a", 240), ""},
		{"240 non-ASCII characters", strings.Repeat("é", 240), ""},
		{"accents, other scripts, emoji", "épreuve – 日本 😀 no-break\u00a0space", ""},
		{"241 characters", strings.Repeat("a", 241), "241 characters long"},
		{"241 non-ASCII characters", strings.Repeat("é", 241), "241 characters long"},
		{"forged status line", "ok\r\x1b[2K\nStatus: Completed", "character U+000D (carriage return) at position 3"},
		{"escape", "ab\x1b[31mred", "character U+001B (escape) at position 3"},
		{"bell", "ding\a", "character U+0007 (bell) at position 5"},
		{"newline", "two\nlines", "character U+000A (line feed) at position 4"},
		{"tab", "a\tb", "character U+0009 (tab) at position 2"},
		{"delete", "a\x7f", "character U+007F (delete) at position 2"},
		{"C1 control", "a\u009bb", "character U+009B at position 2"},
		{"right-to-left override", "txt.\u202eexe", "character U+202E (right-to-left override) at position 5"},
		{"isolate", "\u2066x", "character U+2066 (left-to-right isolate) at position 1"},
		{"zero-width space", "a\u200bb", "character U+200B (zero-width space) at position 2"},
		{"byte-order mark", "\ufeffa", "character U+FEFF (byte-order mark) at position 1"},
		{"paragraph separator", "a\u2029b", "character U+2029 (paragraph separator) at position 2"},
		{"invalid UTF-8", "a\xffb", "invalid UTF-8 at position 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := domain.ValidateDescription(tc.description)
			if tc.want == "" {
				domaintest.CheckErr(t, err, nil)
				return
			}
			domaintest.CheckErr(t, err, domain.ErrInvalid)
			if !strings.Contains(err.Error(), "description") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

func TestCreate(t *testing.T) {
	existing := domaintest.CompletedRun(t).Run
	deleted := domaintest.CompletedRun(t)
	deleted.Delete()

	tests := []struct {
		name  string
		state domain.Run
		edit  func(*domain.CreateRun)
		want  error
	}{
		{name: "new run"},
		{name: "name of a deleted run", state: deleted.Run},
		// Callers name the zero Run so that errors can name it.
		{name: "named but never created", state: domain.Run{Name: domaintest.RunName}},
		{name: "without background maps", edit: func(c *domain.CreateRun) { c.Config.Inputs.Background = nil }},
		{name: "with epochs", edit: func(c *domain.CreateRun) { c.Config.Inputs.Epochs = []string{"epoch01", "epoch02"} }},
		{name: "name taken", state: existing, want: domain.ErrExists},
		{name: "bad name", edit: func(c *domain.CreateRun) { c.Name = "vast pilot" }, want: domain.ErrInvalid},
		{name: "long description", edit: func(c *domain.CreateRun) { c.Description = strings.Repeat("d", 241) }, want: domain.ErrInvalid},
		{name: "anonymous", edit: func(c *domain.CreateRun) { c.Actor = domain.Actor{} }, want: domain.ErrForbidden},
		{name: "no images", edit: func(c *domain.CreateRun) { c.Config = domaintest.Config(domaintest.Settings) }, want: domain.ErrInvalid},
		{name: "a selavy file missing", edit: func(c *domain.CreateRun) { c.Config.Inputs.Selavy = c.Config.Inputs.Selavy[:1] }, want: domain.ErrInvalid},
		{name: "a noise map missing", edit: func(c *domain.CreateRun) { c.Config.Inputs.Noise = c.Config.Inputs.Noise[:1] }, want: domain.ErrInvalid},
		{name: "a background map missing", edit: func(c *domain.CreateRun) { c.Config.Inputs.Background = c.Config.Inputs.Background[:1] }, want: domain.ErrInvalid},
		{name: "an epoch missing", edit: func(c *domain.CreateRun) { c.Config.Inputs.Epochs = []string{"epoch01"} }, want: domain.ErrInvalid},
		{name: "no settings digest", edit: func(c *domain.CreateRun) { c.Config.SettingsDigest = "" }, want: domain.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := domain.CreateRun{Name: domaintest.RunName, Description: "pilot", Config: domaintest.Config(domaintest.Settings, "epoch01", "epoch02"), Actor: domaintest.Alice}
			if tc.edit != nil {
				tc.edit(&cmd)
			}
			events, err := tc.state.Create(cmd)
			domaintest.CheckErr(t, err, tc.want)
			if tc.want != nil {
				return
			}
			want := domain.RunCreated{Name: cmd.Name, Description: cmd.Description, Owner: "alice", Config: cmd.Config}
			if got := domaintest.Single[domain.RunCreated](t, events); !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

func TestUpdateConfig(t *testing.T) {
	next := domaintest.Config(domaintest.Settings, "epoch01", "epoch02", "epoch03")
	deleted := domaintest.CompletedRun(t)
	deleted.Delete()
	tests := []struct {
		name  string
		state domain.Run
		cfg   domain.RunConfig
		actor domain.Actor
		want  error
	}{
		{"by the creator", domaintest.CompletedRun(t).Run, next, domaintest.Alice, nil},
		{"by an administrator", domaintest.CompletedRun(t).Run, next, domaintest.Admin, nil},
		{"by someone else", domaintest.CompletedRun(t).Run, next, domaintest.Bob, domain.ErrForbidden},
		{"unusable configuration", domaintest.CompletedRun(t).Run, domaintest.Config(domaintest.Settings), domaintest.Alice, domain.ErrInvalid},
		{"deleted run", deleted.Run, next, domaintest.Alice, domain.ErrNotFound},
		{"no run", domain.Run{}, next, domaintest.Alice, domain.ErrNotFound},
		{"named but never created", domain.Run{Name: domaintest.RunName, Owner: "alice"}, next, domaintest.Alice, domain.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			events, err := tc.state.UpdateConfig(tc.cfg, tc.actor)
			domaintest.CheckErr(t, err, tc.want)
			if tc.want == nil && !reflect.DeepEqual(domaintest.Single[domain.ConfigUpdated](t, events).Config, tc.cfg) {
				t.Error("the event does not carry the new configuration")
			}
		})
	}
}

// TestStatusTransitions walks a run through every event and checks the
// status each one leads to.
func TestStatusTransitions(t *testing.T) {
	s := domaintest.NewStream(t)
	three := domaintest.Config(domaintest.Settings, "epoch01", "epoch02", "epoch03")
	steps := []struct {
		event string
		do    func()
		want  domain.Status
	}{
		{domain.TypeRunCreated, func() { s.Create(domaintest.Config(domaintest.Settings, "epoch01", "epoch02")) }, domain.StatusInitialised},
		{domain.TypeConfigUpdated, func() { s.Configure(domaintest.Config(domaintest.Settings, "epoch01", "epoch02")) }, domain.StatusInitialised},
		{domain.TypeProcessingRequested, func() { s.RequestProcessing("job-1") }, domain.StatusQueued},
		{domain.TypeProcessingStarted, func() { s.Start("job-1") }, domain.StatusRunning},
		{domain.TypeLogWritten, func() {
			s.Happened(domaintest.Worker, domain.LogWritten{Log: "job-1_log.txt", Kind: domain.LogRun, Lines: []string{"2024-05-01 12:00:00,000 INFO reading images"}})
		}, domain.StatusRunning},
		{domain.TypeProcessingCompleted, func() { s.Complete("job-1", domaintest.Products("epoch01", "epoch02")) }, domain.StatusCompleted},
		{domain.TypeConfigUpdated, func() { s.Configure(three) }, domain.StatusCompleted},
		{domain.TypeProcessingRequested, func() { s.RequestProcessing("job-2") }, domain.StatusQueued},
		{domain.TypeProcessingStarted, func() { s.Start("job-2") }, domain.StatusRunning},
		{domain.TypeProcessingFailed, func() { s.Fail("job-2") }, domain.StatusError},
		{domain.TypeRestoreRequested, func() { s.RequestRestore("restore-1") }, domain.StatusRestoring},
		{domain.TypeRestoreFailed, func() { s.Reported(s.Run.FinishRestore("restore-1", fmt.Errorf("artifact missing"))) }, domain.StatusError},
		{domain.TypeRestoreRequested, func() { s.RequestRestore("restore-2") }, domain.StatusRestoring},
		{domain.TypeRunRestored, func() { s.Reported(s.Run.FinishRestore("restore-2", nil)) }, domain.StatusCompleted},
		{domain.TypeDeletionRequested, func() { s.Accepted(s.Run.RequestDeletion(domaintest.Alice)) }, domain.StatusDeleting},
		{domain.TypeRunDeleted, func() { s.Reported(s.Run.FinishDeletion()) }, domain.StatusDeleting},
		{domain.TypeRunCreated, func() { s.Create(three) }, domain.StatusInitialised},
	}
	for i, step := range steps {
		step.do()
		last := s.Recs[len(s.Recs)-1].Event.EventType()
		if last != step.event {
			t.Fatalf("step %d: recorded %s, want %s", i, last, step.event)
		}
		if s.Run.Status != step.want {
			t.Fatalf("step %d: after %s the run is %s, want %s", i, step.event, s.Run.Status, step.want)
		}
		if wantExists := step.event != domain.TypeRunDeleted; s.Run.Exists() != wantExists {
			t.Fatalf("step %d: after %s Exists() = %v", i, step.event, s.Run.Exists())
		}
	}
	if s.Run.LastSuccessful != nil || s.Run.Products != nil || s.Run.Backup != nil || len(s.Run.Logs) != 0 {
		t.Errorf("a run created again kept the deleted run's state: %s", domaintest.JSONString(t, s.Run))
	}
}

func TestBusyRunRefusesChanges(t *testing.T) {
	tests := []struct {
		status domain.Status
		setup  func(*testing.T) *domaintest.Stream
	}{
		{domain.StatusQueued, func(t *testing.T) *domaintest.Stream {
			s := domaintest.CompletedRun(t)
			s.Configure(domaintest.Config(domaintest.Settings, "epoch01", "epoch02", "epoch03"))
			s.RequestProcessing("job-2")
			return s
		}},
		{domain.StatusRunning, func(t *testing.T) *domaintest.Stream {
			s := domaintest.CompletedRun(t)
			s.RequestFullRerun("job-2")
			s.Start("job-2")
			return s
		}},
		{domain.StatusRestoring, func(t *testing.T) *domaintest.Stream {
			s := domaintest.AddedRun(t)
			s.RequestRestore("restore-1")
			return s
		}},
		{domain.StatusDeleting, func(t *testing.T) *domaintest.Stream {
			s := domaintest.CompletedRun(t)
			s.Accepted(s.Run.RequestDeletion(domaintest.Alice))
			return s
		}},
	}
	for _, tc := range tests {
		t.Run(string(tc.status), func(t *testing.T) {
			r := tc.setup(t).Run
			if r.Status != tc.status {
				t.Fatalf("setup left the run %s", r.Status)
			}
			_, err := r.RequestProcessing(domaintest.Processing("job-9", true, domaintest.Alice))
			domaintest.CheckErr(t, err, domain.ErrRunBusy)
			_, err = r.RequestProcessing(domaintest.Processing("job-9", false, domaintest.Admin))
			domaintest.CheckErr(t, err, domain.ErrRunBusy)
			_, err = r.UpdateConfig(domaintest.Config(domaintest.Settings, "epoch01", "epoch02", "epoch04"), domaintest.Alice)
			domaintest.CheckErr(t, err, domain.ErrRunBusy)
			if tc.status == domain.StatusRestoring || tc.status == domain.StatusDeleting {
				// A Queued or Running run's deletion cancels its job
				// (TestDeletionCancelsJob).
				_, err = r.RequestDeletion(domaintest.Alice)
				domaintest.CheckErr(t, err, domain.ErrRunBusy)
			}
		})
	}
}

func TestIdleRunAcceptsProcessing(t *testing.T) {
	tests := []struct {
		status domain.Status
		setup  func(*testing.T) *domaintest.Stream
	}{
		{domain.StatusInitialised, func(t *testing.T) *domaintest.Stream {
			s := domaintest.NewStream(t)
			s.Create(domaintest.Config(domaintest.Settings, "epoch01"))
			return s
		}},
		{domain.StatusCompleted, domaintest.CompletedRun},
		{domain.StatusError, domaintest.FailedAddition},
	}
	for _, tc := range tests {
		t.Run(string(tc.status), func(t *testing.T) {
			r := tc.setup(t).Run
			if r.Status != tc.status {
				t.Fatalf("setup left the run %s", r.Status)
			}
			events, err := r.RequestProcessing(domaintest.Processing("job-9", true, domaintest.Alice))
			domaintest.CheckErr(t, err, nil)
			if got := domaintest.Single[domain.ProcessingRequested](t, events).PreviousStatus; got != tc.status {
				t.Errorf("PreviousStatus = %s, want %s", got, tc.status)
			}
		})
	}
}

func TestRequestProcessingPermissions(t *testing.T) {
	deleted := domaintest.CompletedRun(t)
	deleted.Delete()
	tests := []struct {
		name  string
		state domain.Run
		actor domain.Actor
		want  error
	}{
		{"creator", domaintest.CompletedRun(t).Run, domaintest.Alice, nil},
		{"administrator", domaintest.CompletedRun(t).Run, domaintest.Admin, nil},
		{"someone else", domaintest.CompletedRun(t).Run, domaintest.Bob, domain.ErrForbidden},
		{"anonymous", domaintest.CompletedRun(t).Run, domain.Actor{}, domain.ErrForbidden},
		{"deleted run", deleted.Run, domaintest.Alice, domain.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.state.RequestProcessing(domaintest.Processing("job-9", true, tc.actor))
			domaintest.CheckErr(t, err, tc.want)
		})
	}
}

// TestAddMode covers what a re-processing without FullRerun may change.
func TestAddMode(t *testing.T) {
	withSelavy := func(i int, path string) domain.RunConfig {
		c := domaintest.Config(domaintest.Settings, "epoch01", "epoch02", "epoch03")
		c.Inputs.Selavy[i] = path
		return c
	}
	withNoise := domaintest.Config(domaintest.Settings, "epoch01", "epoch02", "epoch03")
	withNoise.Inputs.Noise[1] = "noise/epoch02.v2.fits"
	withBackground := domaintest.Config(domaintest.Settings, "epoch01", "epoch02", "epoch03")
	withBackground.Inputs.Background[0] = "bkg/epoch01.v2.fits"
	withoutBackgrounds := domaintest.Config(domaintest.Settings, "epoch01", "epoch02", "epoch03")
	withoutBackgrounds.Inputs.Background = nil
	reordered := domaintest.Config(domaintest.Settings, "epoch04", "epoch02", "epoch03", "epoch01")

	tests := []struct {
		name      string
		next      domain.RunConfig
		fullRerun bool
		want      error
		mode      domain.JobMode
		added     []string
	}{
		{name: "one image added", next: domaintest.Config(domaintest.Settings, "epoch01", "epoch02", "epoch03"),
			mode: domain.ModeAdd, added: []string{domaintest.Image("epoch03")}},
		{name: "images added and reordered", next: reordered,
			mode: domain.ModeAdd, added: []string{domaintest.Image("epoch04"), domaintest.Image("epoch03")}},
		{name: "a new image's own files are free", next: withSelavy(2, "selavy/other.txt"),
			mode: domain.ModeAdd, added: []string{domaintest.Image("epoch03")}},
		{name: "settings changed", next: domaintest.Config(domaintest.OtherSettings, "epoch01", "epoch02", "epoch03"), want: domain.ErrConflict},
		{name: "a previous image removed", next: domaintest.Config(domaintest.Settings, "epoch01", "epoch03"), want: domain.ErrConflict},
		{name: "a previous selavy catalogue changed", next: withSelavy(0, "selavy/epoch01.v2.txt"), want: domain.ErrConflict},
		{name: "a previous noise map changed", next: withNoise, want: domain.ErrConflict},
		{name: "a previous background map changed", next: withBackground, want: domain.ErrConflict},
		{name: "background maps dropped", next: withoutBackgrounds, want: domain.ErrConflict},
		{name: "no new image", next: domaintest.Config(domaintest.Settings, "epoch01", "epoch02"), want: domain.ErrConflict},
		{name: "settings changed, full re-run", next: domaintest.Config(domaintest.OtherSettings, "epoch01", "epoch02", "epoch03"), fullRerun: true, mode: domain.ModeFull},
		{name: "a previous image removed, full re-run", next: domaintest.Config(domaintest.Settings, "epoch01", "epoch03"), fullRerun: true, mode: domain.ModeFull},
		{name: "a previous selavy catalogue changed, full re-run", next: withSelavy(0, "selavy/epoch01.v2.txt"), fullRerun: true, mode: domain.ModeFull},
		{name: "no new image, full re-run", next: domaintest.Config(domaintest.Settings, "epoch01", "epoch02"), fullRerun: true, mode: domain.ModeFull},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := domaintest.CompletedRun(t)
			s.Configure(tc.next)
			events, err := s.Run.RequestProcessing(domaintest.Processing("job-2", tc.fullRerun, domaintest.Alice))
			domaintest.CheckErr(t, err, tc.want)
			if tc.want != nil {
				return
			}
			ev := domaintest.Single[domain.ProcessingRequested](t, events)
			if ev.Mode != tc.mode {
				t.Errorf("mode %s, want %s", ev.Mode, tc.mode)
			}
			if !slices.Equal(ev.AddedImages, tc.added) {
				t.Errorf("added images %v, want %v", ev.AddedImages, tc.added)
			}
			if (ev.Backup != nil) != (tc.mode == domain.ModeAdd) {
				t.Errorf("mode %s with backup %v", ev.Mode, ev.Backup != nil)
			}
			if !reflect.DeepEqual(ev.Config, tc.next) {
				t.Error("the job does not process the current configuration")
			}
		})
	}
}

func TestAdditionTakesBackup(t *testing.T) {
	tests := []struct {
		name  string
		setup func(*testing.T) *domaintest.Stream
	}{
		{"of a run processed once", domaintest.CompletedRun},
		{"of a run that had images added", func(t *testing.T) *domaintest.Stream {
			s := domaintest.AddedRun(t)
			s.Configure(domaintest.Config(domaintest.Settings, "epoch01", "epoch02", "epoch03", "epoch04"))
			return s
		}},
		{"after log lines were written", func(t *testing.T) *domaintest.Stream {
			s := domaintest.CompletedRun(t)
			s.Happened(domaintest.Worker, domain.LogWritten{Log: "job-1_log.txt", Kind: domain.LogRun, Lines: []string{"2024-05-01 12:00:00,000 INFO done"}})
			return s
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.setup(t)
			before := domaintest.Snapshot(t, s.Run)
			want := domain.Backup{Config: *before.LastSuccessful, Products: *before.Products}
			// The current configuration adds an image, so it differs from the
			// one the backup must hold.
			cfg := s.Run.Config
			cfg.Inputs.Images = append(slices.Clone(cfg.Inputs.Images), domaintest.Image("epoch09"))
			cfg.Inputs.Selavy = append(slices.Clone(cfg.Inputs.Selavy), "selavy/epoch09.txt")
			cfg.Inputs.Noise = append(slices.Clone(cfg.Inputs.Noise), "noise/epoch09.fits")
			cfg.Inputs.Background = append(slices.Clone(cfg.Inputs.Background), "bkg/epoch09.fits")
			s.Configure(cfg)

			s.RequestProcessing("job-9")
			ev, ok := s.Recs[len(s.Recs)-1].Event.(domain.ProcessingRequested)
			if !ok || ev.Backup == nil {
				t.Fatalf("recorded %+v, want an addition with a backup", s.Recs[len(s.Recs)-1].Event)
			}
			want.Version = s.Version()
			if !reflect.DeepEqual(*ev.Backup, want) {
				t.Errorf("backup in the event:\n%s\nwant:\n%s", domaintest.JSONString(t, ev.Backup), domaintest.JSONString(t, want))
			}
			if !reflect.DeepEqual(*s.Run.Backup, want) {
				t.Errorf("backup of the run:\n%s\nwant:\n%s", domaintest.JSONString(t, s.Run.Backup), domaintest.JSONString(t, want))
			}
		})
	}
}
