package statecodec_test

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/domain/domaintest"
	"github.com/piperun/piperun/statecodec"
)

// lightStates returns the states of domaintest.StateRuns, one with every field
// filled and distinct (without its job), and restorable runs whose
// configurations and products are of the sizes the service meets.
func lightStates(t *testing.T) []domain.Run {
	t.Helper()
	states := domaintest.StateRuns(t)
	var full domain.Run
	n := 0
	domaintest.FillDistinct(reflect.ValueOf(&full).Elem(), &n)
	full.Status = domain.StatusCompleted
	full.Job = nil
	states = append(states, full)
	s := domaintest.AddedRun(t)
	var r domain.Run
	for _, rec := range s.Recs {
		r.Apply(rec)
	}
	long := domaintest.Snapshot(t, r)
	comments := strings.Repeat("# Review every setting before processing.\n", 60)
	long.Config.YAML = comments + long.Config.YAML
	long.LastSuccessful.YAML = long.Config.YAML
	long.Backup.Config.YAML = comments + long.Backup.Config.YAML // written as a difference
	return append(states, long)
}

// lightOf returns what the light form of r's state holds.
func lightOf(r domain.Run) domain.Run {
	l := domain.Run{Name: r.Name, Description: r.Description, Owner: r.Owner, Status: r.Status,
		Version: r.Version, Created: r.Created, Updated: r.Updated, Deleted: r.Deleted,
		Restore: r.Restore, Logs: r.Logs}
	if r.Backup != nil {
		l.Backup = &domain.Backup{Version: r.Backup.Version}
	}
	return l
}

// TestLightState checks the light form against the whole state: a state
// with a job has none; otherwise it holds what lightOf says, and encodes
// back to the very bytes it was decoded from.
func TestLightState(t *testing.T) {
	withJob, without := 0, 0
	for i, r := range lightStates(t) {
		b, err := statecodec.EncodeState(r)
		if err != nil {
			t.Fatal(err)
		}
		l, err := statecodec.DecodeSharedLight(b)
		if r.Job != nil {
			withJob++
			if !errors.Is(err, statecodec.ErrNoLightForm) {
				t.Fatalf("state %d has a job: got %v, want ErrNoLightForm", i, err)
			}
			continue
		}
		without++
		if err != nil {
			t.Fatalf("state %d: %v", i, err)
		}
		var whole domain.Run
		if err := statecodec.DecodeState(b, &whole); err != nil {
			t.Fatal(err)
		}
		if want := lightOf(whole); !reflect.DeepEqual(l.Run, want) {
			t.Fatalf("state %d: light form\n got %s\nwant %s", i, domaintest.JSONString(t, l.Run), domaintest.JSONString(t, want))
		}
		again, err := l.Encode()
		if err != nil {
			t.Fatalf("state %d: encode unchanged: %v", i, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("state %d: the light form encodes to other bytes than it was decoded from", i)
		}
	}
	if withJob == 0 || without < 5 {
		t.Fatalf("%d states with a job and %d without: the test needs both", withJob, without)
	}
	if _, err := statecodec.DecodeSharedLight([]byte(`{"name":"r"}`)); !errors.Is(err, statecodec.ErrNoLightForm) {
		t.Fatalf("a plain JSON state: got %v, want ErrNoLightForm", err)
	}
}

// TestLightStateApply applies every kind of event to the light form and to
// the whole state of each run: the light form's encoding is either
// refused (ErrLightChanged) or exactly the whole state's; it is refused
// when the event changed what the light form skips, and only when it set
// some of it (to what it was, perhaps); and a
// restore request on a restorable run is never refused (else the light
// path would serve nothing).
func TestLightStateApply(t *testing.T) {
	events := append(domaintest.EveryKindOfEvent(), domain.RestoreRequested{RequestID: "restore-2", Log: "2026-11-27-00-00-00_restore_log.txt", PreviousStatus: domain.StatusCompleted, BackupVersion: 3})
	at := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	restorable := 0
	for i, st := range lightStates(t) {
		if st.Job != nil {
			continue
		}
		b, err := statecodec.EncodeState(st)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			whole, l := decodeBoth(t, b)
			rec := domain.Recorded{Version: whole.Version + 1, Time: at, Actor: "alice", Event: e}
			before, lightBefore := whole, skipped(l.Run)
			whole.Apply(rec)
			l.Run.Apply(rec)
			want, err := statecodec.EncodeState(whole)
			if err != nil {
				t.Fatal(err)
			}
			got, err := l.Encode()
			bodyChanged := !reflect.DeepEqual(skipped(before), skipped(whole))
			switch {
			case errors.Is(err, statecodec.ErrLightChanged):
				// An event that sets a configuration to what it was is
				// refused too: the light form cannot tell.
				if !bodyChanged && reflect.DeepEqual(lightBefore, skipped(l.Run)) {
					t.Errorf("state %d, %T: refused, though the event left what the light form skips as it was", i, e)
				}
			case err != nil:
				t.Fatalf("state %d, %T: %v", i, e, err)
			case bodyChanged:
				t.Errorf("state %d, %T: encoded, though the event changed what the light form skips", i, e)
			case !bytes.Equal(got, want):
				t.Errorf("state %d, %T: the light form's encoding differs from the whole state's", i, e)
			}
			if _, ok := e.(domain.RestoreRequested); ok && before.RestoreAvailable() {
				restorable++
				if err != nil {
					t.Errorf("state %d: a restore request was refused: %v", i, err)
				}
			}
		}
	}
	if restorable < 4 {
		t.Fatalf("only %d restore requests on restorable runs", restorable)
	}
}

// decodeBoth decodes state b whole and in its light form.
func decodeBoth(t *testing.T, b []byte) (domain.Run, statecodec.LightState) {
	t.Helper()
	var whole domain.Run
	if err := statecodec.DecodeState(b, &whole); err != nil {
		t.Fatal(err)
	}
	l, err := statecodec.DecodeSharedLight(b)
	if err != nil {
		t.Fatal(err)
	}
	return whole, l
}

// skipped returns what the light form of r skips.
func skipped(r domain.Run) any {
	return []any{r.Config, r.LastSuccessful, r.Products, r.Backup, r.Job}
}

// TestLightDecisions checks that a restore request decided on the light
// form is decided as on the whole state, for every state and actor.
func TestLightDecisions(t *testing.T) {
	actors := []domain.Actor{{Name: "alice"}, {Name: "bob"}, {Name: "root", Admin: true}, {}}
	n := 0
	for i, st := range lightStates(t) {
		if st.Job != nil {
			continue
		}
		st.Owner = "alice"
		b, err := statecodec.EncodeState(st)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range actors {
			whole, l := decodeBoth(t, b)
			c := domain.RequestRestore{RequestID: "r-1", Debug: true, Log: "x_restore_log.txt", Actor: a}
			wantEvs, wantErr := whole.RequestRestore(c)
			gotEvs, gotErr := l.Run.RequestRestore(c)
			if !reflect.DeepEqual(gotEvs, wantEvs) || (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
				t.Fatalf("state %d, actor %+v: light decided %v, %v; whole %v, %v", i, a, gotEvs, gotErr, wantEvs, wantErr)
			}
			if wantErr == nil {
				n++
			}
		}
	}
	if n == 0 {
		t.Fatal("no restore request was accepted: the test compares refusals only")
	}
}

// TestLightDamaged cuts and changes a state: DecodeSharedLight fails or
// succeeds without panicking, and never accepts a state cut short.
func TestLightDamaged(t *testing.T) {
	states := lightStates(t)
	r := states[len(states)-1]
	b, err := statecodec.EncodeState(r)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(b); i++ {
		if _, err := statecodec.DecodeSharedLight(b[:i]); err == nil {
			t.Fatalf("a state cut to %d of %d bytes decoded without error", i, len(b))
		}
	}
	if _, err := statecodec.DecodeSharedLight(append(slices.Clone(b), 0)); err == nil {
		t.Fatal("a state with a byte after it decoded without error")
	}
	for i := 1; i < len(b); i++ {
		for _, x := range []byte{0, 1, 2, 3, 4, 0x7f, 0xff} {
			d := slices.Clone(b)
			d[i] = x
			_, _ = statecodec.DecodeSharedLight(d)
		}
	}
}

// FuzzDecodeSharedLight feeds damaged states to DecodeSharedLight: no
// panic, no hang; a state it accepts is one DecodeState accepts, without
// a job, with the same leading fields, and its encoding decodes to the
// same whole state.
func FuzzDecodeSharedLight(f *testing.F) {
	addStateSeeds(f, false)
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := statecodec.DecodeSharedLight(data)
		if err != nil {
			return
		}
		var whole domain.Run
		if err := statecodec.DecodeState(data, &whole); err != nil {
			t.Fatalf("the light form accepted a state DecodeState refuses: %v", err)
		}
		if whole.Job != nil {
			t.Fatal("the light form accepted a state with a job")
		}
		if want := lightOf(whole); !reflect.DeepEqual(l.Run, want) {
			t.Fatalf("light form\n got %+v\nwant %+v", l.Run, want)
		}
		again, err := l.Encode()
		if err != nil {
			t.Fatal(err)
		}
		var back domain.Run
		if err := statecodec.DecodeState(again, &back); err != nil || !reflect.DeepEqual(back, whole) {
			t.Fatalf("the light form's encoding does not decode to the state: %v", err)
		}
	})
}

// TestLightRefusesChanges changes each part the light form skips, one at
// a time: Encode must refuse every one (no event does some of these alone,
// so TestLightStateApply cannot show it).
func TestLightRefusesChanges(t *testing.T) {
	states := lightStates(t)
	b, err := statecodec.EncodeState(states[len(states)-1])
	if err != nil {
		t.Fatal(err)
	}
	changes := map[string]func(r *domain.Run){
		"configuration text":   func(r *domain.Run) { r.Config.YAML = "x" },
		"configuration inputs": func(r *domain.Run) { r.Config.Inputs.Images = []string{} },
		"configuration digest": func(r *domain.Run) { r.Config.SettingsDigest = "x" },
		"last successful":      func(r *domain.Run) { r.LastSuccessful = &domain.RunConfig{} },
		"products":             func(r *domain.Run) { r.Products = &domain.Products{} },
		"backup dropped":       func(r *domain.Run) { r.Backup = nil },
		"backup replaced":      func(r *domain.Run) { r.Backup = &domain.Backup{Version: r.Backup.Version} },
		"backup version":       func(r *domain.Run) { r.Backup.Version++ },
		"backup configuration": func(r *domain.Run) { r.Backup.Config.YAML = "x" },
		"backup products":      func(r *domain.Run) { r.Backup.Products.Figures.NImages = 1 },
		"backup artifacts":     func(r *domain.Run) { r.Backup.Products.Artifacts = []domain.Artifact{} },
		"job":                  func(r *domain.Run) { r.Job = &domain.Job{} },
	}
	for name, change := range changes {
		l, err := statecodec.DecodeSharedLight(b)
		if err != nil {
			t.Fatal(err)
		}
		if l.Run.Backup == nil {
			t.Fatal("the state has no backup: the test needs one")
		}
		change(&l.Run)
		if _, err := l.Encode(); !errors.Is(err, statecodec.ErrLightChanged) {
			t.Errorf("%s changed: Encode gave %v, want ErrLightChanged", name, err)
		}
	}
}
