package eventjson_test

// Events as the domain's decisions write them, for the codec's tests: a
// subset of the fixtures of domain's own tests.

import (
	"strings"
	"testing"
	"time"

	"github.com/piperun/piperun/domain"
)

const (
	runName  = "vast-pilot"
	settings = "sha256:settings-1"
)

var alice = domain.Actor{Name: "alice"}

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

func (s *stream) create(cfg domain.RunConfig) {
	s.t.Helper()
	s.accepted(s.run.Create(domain.CreateRun{Name: runName, Description: "VAST pilot survey", Config: cfg, Actor: alice}))
}

func processing(jobID string, fullRerun bool, a domain.Actor) domain.RequestProcessing {
	return domain.RequestProcessing{JobID: jobID, FullRerun: fullRerun, Log: jobID + "_log.txt", Actor: a}
}

func (s *stream) requestProcessing(jobID string) {
	s.t.Helper()
	s.accepted(s.run.RequestProcessing(processing(jobID, false, alice)))
}
