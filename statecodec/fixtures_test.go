package statecodec_test

// The run histories of domain's decision tests, built here through the
// domain's exported decisions, so that the codec is tested on the states
// a run goes through.

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/piperun/piperun/domain"
)

const (
	runName  = "vast-pilot"
	settings = "sha256:settings-1"
)

var (
	alice  = domain.Actor{Name: "alice"}
	worker = domain.Actor{Name: "system:worker"}
)

// config returns a run configuration over the given epochs, each image with
// its own selavy catalogue, noise map and background map.
func config(digest string, epochs ...string) domain.RunConfig {
	var in domain.Inputs
	for _, e := range epochs {
		in.Images = append(in.Images, image(e))
		in.Selavy = append(in.Selavy, "selavy/"+e+".txt")
		in.Noise = append(in.Noise, "noise/"+e+".fits")
		in.Background = append(in.Background, "bkg/"+e+".fits")
	}
	return domain.RunConfig{
		YAML:           "inputs: [" + strings.Join(epochs, ", ") + "]\n",
		Inputs:         in,
		SettingsDigest: digest,
	}
}

func image(epoch string) string { return "img/" + epoch + ".fits" }

// products returns what processing the given epochs produces: one
// measurements file per image, shared by every run that holds the image, and
// a sources file that depends on the whole set.
func products(epochs ...string) domain.Products {
	var p domain.Products
	for i, e := range epochs {
		p.Images = append(p.Images, domain.ImageSummary{
			Name: e + ".fits", Path: image(e), Epoch: e,
			DateTime:     time.Date(2019, 4, i+1, 10, 0, 0, 0, time.UTC),
			FrequencyMHz: 887.5, BMajDeg: 0.004, BMinDeg: 0.003, BPADeg: 45,
			RADeg: 320.1, DecDeg: -6.3, NMeasurements: 100 + i,
		})
		p.Artifacts = append(p.Artifacts, measurements(e))
	}
	p.Artifacts = append(p.Artifacts, sources(epochs...))
	p.Figures = domain.Figures{
		NImages: len(epochs), NSources: 90 * len(epochs),
		NSelavyMeasurements: 100 * len(epochs), NForcedMeasurements: 10 * len(epochs), NNewSources: len(epochs),
	}
	return p
}

func measurements(epoch string) domain.Artifact {
	return domain.Artifact{Name: "measurements/" + epoch + ".parquet", Digest: "sha256:meas-" + epoch, Size: 1000}
}

func sources(epochs ...string) domain.Artifact {
	return domain.Artifact{Name: "sources.parquet", Digest: "sha256:sources-" + strings.Join(epochs, "-"), Size: 500}
}

// stream stands in for the event store: it records decided events with
// consecutive versions and increasing times, and folds them into the run.
type stream struct {
	t    testing.TB
	run  domain.Run
	recs []domain.Recorded
	now  time.Time
}

func newStream(t testing.TB) *stream {
	return &stream{t: t, now: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}
}

// happened records events, decided or hand-built, as the actor's.
func (s *stream) happened(actor domain.Actor, events ...domain.Event) {
	for _, e := range events {
		s.now = s.now.Add(time.Second)
		rec := domain.Recorded{Version: int64(len(s.recs)) + 1, Time: s.now, Actor: actor.Name, Event: e}
		s.recs = append(s.recs, rec)
		s.run.Apply(rec)
	}
}

// accepted records the events of a command of alice's that must be accepted.
func (s *stream) accepted(events []domain.Event, err error) {
	s.t.Helper()
	if err != nil {
		s.t.Fatalf("command refused: %v", err)
	}
	if len(events) == 0 {
		s.t.Fatal("command accepted without events")
	}
	s.happened(alice, events...)
}

// reported records the events of a worker's report that must not be ignored.
func (s *stream) reported(events []domain.Event) {
	s.t.Helper()
	if len(events) == 0 {
		s.t.Fatal("worker report ignored")
	}
	s.happened(worker, events...)
}

func (s *stream) create(cfg domain.RunConfig) {
	s.t.Helper()
	s.accepted(s.run.Create(domain.CreateRun{Name: runName, Description: "VAST pilot survey", Config: cfg, Actor: alice}))
}

func (s *stream) configure(cfg domain.RunConfig) {
	s.t.Helper()
	s.accepted(s.run.UpdateConfig(cfg, alice))
}

func processing(jobID string, fullRerun bool, a domain.Actor) domain.RequestProcessing {
	return domain.RequestProcessing{JobID: jobID, FullRerun: fullRerun, Log: jobID + "_log.txt", Actor: a}
}

func (s *stream) requestProcessing(jobID string) {
	s.t.Helper()
	s.accepted(s.run.RequestProcessing(processing(jobID, false, alice)))
}

func (s *stream) requestFullRerun(jobID string) {
	s.t.Helper()
	s.accepted(s.run.RequestProcessing(processing(jobID, true, alice)))
}

func (s *stream) start(jobID string) {
	s.t.Helper()
	s.reported(s.run.StartProcessing(jobID))
}

func (s *stream) complete(jobID string, p domain.Products) {
	s.t.Helper()
	s.reported(s.run.FinishProcessing(jobID, &p, nil))
}

func (s *stream) fail(jobID string) {
	s.t.Helper()
	s.reported(s.run.FinishProcessing(jobID, nil, errors.New("selavy catalogue unreadable")))
}

// process runs a job from request to completion.
func (s *stream) process(jobID string, p domain.Products) {
	s.t.Helper()
	s.requestProcessing(jobID)
	s.start(jobID)
	s.complete(jobID, p)
}

func restoring(requestID string, a domain.Actor) domain.RequestRestore {
	return domain.RequestRestore{RequestID: requestID, Log: requestID + "_restore_log.txt", Actor: a}
}

func (s *stream) requestRestore(requestID string) {
	s.t.Helper()
	s.accepted(s.run.RequestRestore(restoring(requestID, alice)))
}

// restore runs a restore from request to success.
func (s *stream) restore(requestID string) {
	s.t.Helper()
	s.requestRestore(requestID)
	s.reported(s.run.FinishRestore(requestID, nil))
}

// completedRun is a run over epochs 01 and 02, processed once.
func completedRun(t *testing.T) *stream {
	t.Helper()
	s := newStream(t)
	s.create(config(settings, "epoch01", "epoch02"))
	s.process("job-1", products("epoch01", "epoch02"))
	return s
}

// addedRun is completedRun after epoch03 was added successfully.
func addedRun(t *testing.T) *stream {
	t.Helper()
	s := completedRun(t)
	s.configure(config(settings, "epoch01", "epoch02", "epoch03"))
	s.process("job-2", products("epoch01", "epoch02", "epoch03"))
	return s
}

// failedAddition is completedRun after an addition of epoch03 that failed.
func failedAddition(t *testing.T) *stream {
	t.Helper()
	s := completedRun(t)
	s.configure(config(settings, "epoch01", "epoch02", "epoch03"))
	s.requestProcessing("job-2")
	s.start("job-2")
	s.fail("job-2")
	return s
}

// single returns the only event of a decision, which must be an E.
func single[E domain.Event](t *testing.T, events []domain.Event) E {
	t.Helper()
	var want E
	if len(events) != 1 {
		t.Fatalf("got %d events %v, want one %T", len(events), events, want)
	}
	e, ok := events[0].(E)
	if !ok {
		t.Fatalf("got %T, want %T", events[0], want)
	}
	return e
}

// snapshot deep-copies a run so that later events cannot change it.
func snapshot(t *testing.T, r domain.Run) domain.Run {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var c domain.Run
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func jsonString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var timeType = reflect.TypeFor[time.Time]()

// fill sets every settable field under v to a non-zero value.
func fill(v reflect.Value, depth int) {
	if depth > 8 {
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("x" + v.Type().Name())
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(7)
	case reflect.Float64, reflect.Float32:
		v.SetFloat(1.5)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), depth+1)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fill(v.Index(i), depth+1)
		}
	case reflect.Struct:
		if v.Type() == timeType {
			v.Set(reflect.ValueOf(time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), depth+1)
			}
		}
	default:
		panic("fill: unhandled kind " + v.Kind().String() + " at " + v.Type().String())
	}
}

// runningJob is completedRun with a full re-run started n times.
func runningJob(t *testing.T, n int) *stream {
	t.Helper()
	s := completedRun(t)
	s.requestFullRerun("job-2")
	if n > 0 {
		s.start("job-2")
	}
	for range n - 1 {
		s.reported(s.run.ResumeProcessing("job-2", 100))
	}
	return s
}

// everyKindOfEvent returns an event of each kind (two processing requests:
// a full re-run and an addition), with the IDs the states of
// TestLeavesArtifacts (in domain) and TestLightStateApply use.
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

// shared reports pointers and slices that a and b have in common.
func shared(t *testing.T, path string, a, b reflect.Value) {
	t.Helper()
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() {
			return
		}
		if a.Pointer() == b.Pointer() {
			t.Errorf("%s: the clone shares the pointer", path)
		}
		shared(t, path, a.Elem(), b.Elem())
	case reflect.Slice:
		if a.Len() == 0 {
			return
		}
		if a.Pointer() == b.Pointer() {
			t.Errorf("%s: the clone shares the slice's array", path)
		}
		for i := range a.Len() {
			shared(t, path+"[]", a.Index(i), b.Index(i))
		}
	case reflect.Map:
		if !a.IsNil() && a.Pointer() == b.Pointer() {
			t.Errorf("%s: the clone shares the map", path)
		}
	case reflect.Struct:
		if a.Type() == timeType {
			return
		}
		for i := range a.NumField() {
			if a.Type().Field(i).IsExported() {
				shared(t, path+"."+a.Type().Field(i).Name, a.Field(i), b.Field(i))
			}
		}
	}
}
