package domain_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/domain/domaintest"
)

// TestRunClone checks that a clone of a state with every field set is equal
// to it and shares no pointer, slice or map with it (a field added to Run
// and not cloned fails here).
func TestRunClone(t *testing.T) {
	var r domain.Run
	n := 0
	domaintest.FillDistinct(reflect.ValueOf(&r).Elem(), &n)
	c := r.Clone()
	if !reflect.DeepEqual(c, r) {
		t.Fatalf("clone differs:\n%s\nwant\n%s", domaintest.JSONString(t, c), domaintest.JSONString(t, r))
	}
	domaintest.CheckUnshared(t, "run", reflect.ValueOf(c), reflect.ValueOf(r))

	// Nil and empty lists stay as they were.
	r.Logs = []domain.LogRef{}
	r.Config.Inputs.Epochs = nil
	c = r.Clone()
	if c.Logs == nil || c.Config.Inputs.Epochs != nil {
		t.Errorf("clone turned an empty list nil or a nil one empty: logs %#v, epochs %#v", c.Logs, c.Config.Inputs.Epochs)
	}
}

// TestAuditComparesContent checks what Audit counts as the same
// configuration and products when it compares a restore with the run
// before the addition: nil and empty lists alike, times as instants; any
// other difference is a finding.
func TestAuditComparesContent(t *testing.T) {
	s := domaintest.AddedRun(t)
	s.Restore("restore-1")
	if f := domain.Audit(s.Recs); len(f) != 0 {
		t.Fatalf("clean history has findings: %v", f)
	}
	backupAt := -1
	for i, rec := range s.Recs {
		if e, ok := rec.Event.(domain.ProcessingRequested); ok && e.Backup != nil {
			backupAt = i
		}
	}
	if backupAt < 0 {
		t.Fatal("no addition with a backup in the fixture")
	}
	edit := func(f func(b *domain.Backup)) []domain.AuditFinding {
		recs := append([]domain.Recorded(nil), s.Recs...)
		e := recs[backupAt].Event.(domain.ProcessingRequested)
		b := domain.Backup{Version: e.Backup.Version, Config: e.Backup.Config.ExactClone(), Products: e.Backup.Products.ExactClone()}
		f(&b)
		e.Backup = &b
		recs[backupAt].Event = e
		return domain.Audit(recs)
	}
	alike := map[string]func(b *domain.Backup){
		"epochs empty instead of nil": func(b *domain.Backup) {
			if b.Config.Inputs.Epochs == nil {
				b.Config.Inputs.Epochs = []string{}
			} else if len(b.Config.Inputs.Epochs) == 0 {
				b.Config.Inputs.Epochs = nil
			}
		},
		"an image time in another zone": func(b *domain.Backup) {
			b.Products.Images[0].DateTime = b.Products.Images[0].DateTime.In(time.FixedZone("AEST", 10*3600))
		},
	}
	for name, f := range alike {
		if got := edit(f); len(got) != 0 {
			t.Errorf("%s: findings %v, want none", name, got)
		}
	}
	differ := map[string]func(b *domain.Backup){
		"configuration text":  func(b *domain.Backup) { b.Config.YAML += "\n# edited" },
		"settings digest":     func(b *domain.Backup) { b.Config.SettingsDigest = "other" },
		"an input":            func(b *domain.Backup) { b.Config.Inputs.Noise[0] = "other.fits" },
		"a product's digest":  func(b *domain.Backup) { b.Products.Artifacts[0].Digest = "sha256:other" },
		"a figure":            func(b *domain.Backup) { b.Products.Figures.NSources++ },
		"an image time":       func(b *domain.Backup) { b.Products.Images[0].DateTime = b.Products.Images[0].DateTime.Add(time.Second) },
		"an image's position": func(b *domain.Backup) { b.Products.Images[0].RADeg += 1e-9 },
		"one image fewer":     func(b *domain.Backup) { b.Products.Images = b.Products.Images[1:] },
	}
	for name, f := range differ {
		got := edit(f)
		if len(got) == 0 {
			t.Errorf("%s changed in the backup: no finding", name)
		}
	}
}
