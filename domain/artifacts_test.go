package domain_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/domain/domaintest"
)

// TestLeavesArtifacts applies every kind of event to run states met in a
// run's life and to a state with every field filled: an event
// LeavesArtifacts names must never change the products or the backup,
// and each event it does not name must change them in some state (so the
// list is not shorter than it could be by mistake, nor longer).
func TestLeavesArtifacts(t *testing.T) {
	states := domaintest.StateRuns(t)
	var full domain.Run
	n := 0
	domaintest.FillDistinct(reflect.ValueOf(&full).Elem(), &n)
	full.Status = domain.StatusCompleted
	full.Job.ID, full.Restore.ID = "job", "restore"
	states = append(states, full)
	events := domaintest.EveryKindOfEvent()
	artifacts := func(r domain.Run) string {
		var s []string
		if r.Products != nil {
			s = append(s, domaintest.JSONString(t, r.Products.Artifacts))
		}
		if r.Backup != nil {
			s = append(s, "backup "+domaintest.JSONString(t, r.Backup.Products.Artifacts))
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
			r := domaintest.Snapshot(t, st)
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
