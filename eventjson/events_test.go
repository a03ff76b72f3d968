package eventjson_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/domain/domaintest"
	"github.com/piperun/piperun/eventjson"
)

// sampleEvents holds one event of every type, every field set.
func sampleEvents() []domain.Event {
	cfg := domaintest.Config(domaintest.Settings, "epoch01", "epoch02")
	cfg.Inputs.Epochs = []string{"epoch01", "epoch02"}
	p := domaintest.Products("epoch01", "epoch02")
	return []domain.Event{
		domain.RunCreated{Name: domaintest.RunName, Description: "VAST pilot survey", Owner: "alice", Config: cfg},
		domain.ConfigUpdated{Config: cfg},
		domain.ProcessingRequested{
			JobID: "job-2", Mode: domain.ModeAdd, Debug: true, FullRerun: true, Config: cfg,
			Log: "2024-05-01-12-00-00_log.txt", PreviousStatus: domain.StatusCompleted,
			AddedImages: []string{domaintest.Image("epoch02")},
			Backup:      &domain.Backup{Version: 6, Config: domaintest.Config(domaintest.Settings, "epoch01"), Products: domaintest.Products("epoch01")},
		},
		domain.ProcessingStarted{JobID: "job-2"},
		domain.ProcessingCompleted{JobID: "job-2", Products: p},
		domain.ProcessingFailed{JobID: "job-2", Reason: "selavy catalogue unreadable"},
		domain.LogWritten{Log: "2024-05-01-12-00-00_log.txt", Kind: domain.LogRun, Lines: []string{"2024-05-01 12:00:00,000 INFO reading images"}},
		domain.RestoreRequested{
			RequestID: "restore-1", Debug: true, Log: "2024-05-01-13-00-00_restore_log.txt",
			PreviousStatus: domain.StatusError, BackupVersion: 6,
		},
		domain.RunRestored{RequestID: "restore-1", BackupVersion: 6, Abandoned: []domain.Artifact{domaintest.Measurements("epoch02")}},
		domain.RestoreFailed{RequestID: "restore-1", Reason: "artifact sha256:meas-epoch01 is missing"},
		domain.DeletionRequested{},
		domain.RunDeleted{Artifacts: p.Artifacts},
		domain.UserCreated{Name: "alice", Admin: true, TokenHash: "sha256:token"},
		domain.UserTokenRevoked{},
		domain.UserTokenRotated{TokenHash: "sha256:new-token"},
		domain.SessionEnded{Session: "c2Vzc2lvbg", Until: time.Date(2024, 5, 8, 12, 0, 0, 0, time.UTC)},
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, e := range sampleEvents() {
		t.Run(e.EventType(), func(t *testing.T) {
			// A zero field would not show that it survives the round trip.
			v := reflect.ValueOf(e)
			for i := range v.NumField() {
				if v.Field(i).IsZero() {
					t.Fatalf("sample leaves %s.%s zero", v.Type().Name(), v.Type().Field(i).Name)
				}
			}
			typ, data, err := eventjson.Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			if typ != e.EventType() {
				t.Errorf("encoded as %s, want %s", typ, e.EventType())
			}
			got, err := eventjson.Decode(typ, data)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, e) {
				t.Errorf("decoded\n%#v\nwant\n%#v", got, e)
			}
		})
	}
}

// TestSamplesCoverEveryEventType keeps the round trip honest when event types
// are added: every type with an EventType method in the domain's events.go
// needs a sample (and so a case in Decode).
func TestSamplesCoverEveryEventType(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "../domain/events.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var declared []string
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Name.Name != "EventType" || fn.Recv == nil {
			continue
		}
		if id, ok := fn.Recv.List[0].Type.(*ast.Ident); ok {
			declared = append(declared, id.Name)
		}
	}
	var sampled []string
	for _, e := range sampleEvents() {
		sampled = append(sampled, reflect.TypeOf(e).Name())
	}
	slices.Sort(declared)
	slices.Sort(sampled)
	if len(declared) == 0 || !slices.Equal(declared, sampled) {
		t.Errorf("events.go declares %v, samples cover %v", declared, sampled)
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name string
		typ  string
		data string
	}{
		{"unknown type", "run.renamed.v1", `{}`},
		{"unversioned type", "run.created", `{}`},
		{"malformed body", domain.TypeRunCreated, `{"name":`},
		{"wrong field type", domain.TypeProcessingStarted, `{"job_id":42}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if e, err := eventjson.Decode(tc.typ, []byte(tc.data)); err == nil {
				t.Errorf("decoded %#v, want an error", e)
			}
		})
	}
}
