package domain_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/piperun/piperun/domain"
)

// stateRuns returns run states met in a run's life, at every event of the
// streams the decision tests use, plus a state with every field filled
// and one with empty (not nil) slices.
func stateRuns(t *testing.T) []domain.Run {
	t.Helper()
	var out []domain.Run
	collect := func(s *stream) {
		var r domain.Run
		for _, rec := range s.recs {
			r.Apply(rec)
			out = append(out, snapshot(t, r))
		}
	}
	collect(addedRun(t))
	collect(failedAddition(t))
	s := addedRun(t)
	s.restore("restore-1")
	collect(s)
	s = completedRun(t)
	s.configure(config(settings, "epoch01", "epoch02", "epoch03"))
	s.requestProcessing("job-2") // the job's configuration equals the current one, not the last successful
	collect(s)

	var full domain.Run
	fill(reflect.ValueOf(&full).Elem(), 0)
	out = append(out, full)
	same := snapshot(t, full)
	*same.LastSuccessful = same.Config.Clone()
	same.Backup.Config = same.LastSuccessful.Clone()
	same.Job.Config = same.Config.Clone()
	out = append(out, same)
	empty := domain.Run{Name: "e", Logs: []domain.LogRef{}, Products: &domain.Products{Artifacts: []domain.Artifact{}}}
	empty.Config.Inputs.Images = []string{}
	out = append(out, empty, domain.Run{})
	return out
}

// fillDistinct sets every field under v to a value of its own.
func fillDistinct(v reflect.Value, n *int) {
	*n++
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("%s-%d", v.Type().Name(), *n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(int64(*n))
	case reflect.Float64, reflect.Float32:
		v.SetFloat(float64(*n) + 0.25)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fillDistinct(v.Elem(), n)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fillDistinct(v.Index(i), n)
		}
	case reflect.Struct:
		if v.Type() == timeType {
			v.Set(reflect.ValueOf(time.Date(2026, 11, 27, 3, 0, *n, *n, time.UTC)))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fillDistinct(v.Field(i), n)
			}
		}
	default:
		panic("fillDistinct: unhandled kind " + v.Kind().String())
	}
}

// TestLeavesArtifacts applies every kind of event to run states met in a
// run's life and to a state with every field filled: an event
// LeavesArtifacts names must never change the products or the backup,
// and each event it does not name must change them in some state (so the
// list is not shorter than it could be by mistake, nor longer).
func TestLeavesArtifacts(t *testing.T) {
	states := stateRuns(t)
	var full domain.Run
	n := 0
	fillDistinct(reflect.ValueOf(&full).Elem(), &n)
	full.Status = domain.StatusCompleted
	full.Job.ID, full.Restore.ID = "job", "restore"
	states = append(states, full)
	events := everyKindOfEvent()
	artifacts := func(r domain.Run) string {
		var s []string
		if r.Products != nil {
			s = append(s, jsonString(t, r.Products.Artifacts))
		}
		if r.Backup != nil {
			s = append(s, "backup "+jsonString(t, r.Backup.Products.Artifacts))
		}
		if r.Deleted {
			s = append(s, "deleted")
		}
		return strings.Join(s, "\n")
	}
	for _, e := range events {
		changed := false
		for _, st := range states {
			before := artifacts(st)
			r := snapshot(t, st)
			r.Apply(domain.Recorded{Version: r.Version + 1, Event: e})
			if artifacts(r) != before {
				changed = true
				if domain.LeavesArtifacts(e) {
					t.Errorf("%T (%+v) changed the artifacts of a run in state %s", e, e, st.Status)
				}
			}
		}
		if !changed && !domain.LeavesArtifacts(e) {
			t.Errorf("%T (%+v) changed no run's artifacts here, yet LeavesArtifacts does not name it", e, e)
		}
	}
}

// everyKindOfEvent returns an event of each kind (two processing requests:
// a full re-run and an addition), with the IDs the states of
// TestLeavesArtifacts use.
func everyKindOfEvent() []domain.Event {
	p := products("epoch09")
	return []domain.Event{
		domain.RunCreated{Name: "r", Config: config(settings, "epoch01")},
		domain.ConfigUpdated{Config: config(settings, "epoch01", "epoch02")},
		domain.ProcessingRequested{JobID: "job", Mode: domain.ModeFull, Config: config(settings, "epoch01")},
		domain.ProcessingRequested{JobID: "job", Mode: domain.ModeAdd, Config: config(settings, "epoch01"), Backup: &domain.Backup{Products: p}},
		domain.ProcessingStarted{JobID: "job"},
		domain.ProcessingCompleted{JobID: "job", Products: p},
		domain.ProcessingFailed{JobID: "job"},
		domain.LogWritten{Log: "l", Lines: []string{"x"}},
		domain.RestoreRequested{RequestID: "restore"},
		domain.RunRestored{RequestID: "restore"},
		domain.RestoreFailed{RequestID: "restore"},
		domain.DeletionRequested{},
		domain.RunDeleted{},
	}
}
