package domaintest

import (
	"strings"
	"time"

	"github.com/piperun/piperun/domain"
)

const (
	// RunName is the name every fixture run is created with.
	RunName = "vast-pilot"
	// Settings is the settings digest of the fixture configurations.
	Settings = "sha256:settings-1"
	// OtherSettings is the digest of the same run with a changed setting.
	OtherSettings = "sha256:settings-2"
)

// The actors of the fixtures: two users, an administrator and the worker
// that reports on jobs.
var (
	Alice  = domain.Actor{Name: "alice"}
	Bob    = domain.Actor{Name: "bob"}
	Admin  = domain.Actor{Name: "root", Admin: true}
	Worker = domain.Actor{Name: "system:worker"}
)

// Config returns a run configuration over the given epochs, each image with
// its own selavy catalogue, noise map and background map.
func Config(digest string, epochs ...string) domain.RunConfig {
	var in domain.Inputs
	for _, e := range epochs {
		in.Images = append(in.Images, Image(e))
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

// Image returns the path of the image of an epoch.
func Image(epoch string) string { return "img/" + epoch + ".fits" }

// Products returns what processing the given epochs produces: one
// measurements file per image, shared by every run that holds the image, and
// a sources file that depends on the whole set.
func Products(epochs ...string) domain.Products {
	var p domain.Products
	for i, e := range epochs {
		p.Images = append(p.Images, domain.ImageSummary{
			Name: e + ".fits", Path: Image(e), Epoch: e,
			DateTime:     time.Date(2019, 4, i+1, 10, 0, 0, 0, time.UTC),
			FrequencyMHz: 887.5, BMajDeg: 0.004, BMinDeg: 0.003, BPADeg: 45,
			RADeg: 320.1, DecDeg: -6.3, NMeasurements: 100 + i,
		})
		p.Artifacts = append(p.Artifacts, Measurements(e))
	}
	p.Artifacts = append(p.Artifacts, Sources(epochs...))
	p.Figures = domain.Figures{
		NImages: len(epochs), NSources: 90 * len(epochs),
		NSelavyMeasurements: 100 * len(epochs), NForcedMeasurements: 10 * len(epochs), NNewSources: len(epochs),
	}
	return p
}

// Measurements returns the measurements file processing an epoch's image
// produces.
func Measurements(epoch string) domain.Artifact {
	return domain.Artifact{Name: "measurements/" + epoch + ".parquet", Digest: "sha256:meas-" + epoch, Size: 1000}
}

// Sources returns the sources file of a run over the given epochs.
func Sources(epochs ...string) domain.Artifact {
	return domain.Artifact{Name: "sources.parquet", Digest: "sha256:sources-" + strings.Join(epochs, "-"), Size: 500}
}

// Processing returns the command to process a run, its log named after the
// job.
func Processing(jobID string, fullRerun bool, a domain.Actor) domain.RequestProcessing {
	return domain.RequestProcessing{JobID: jobID, FullRerun: fullRerun, Log: jobID + "_log.txt", Actor: a}
}

// Restoring returns the command to restore a run, its log named after the
// request.
func Restoring(requestID string, a domain.Actor) domain.RequestRestore {
	return domain.RequestRestore{RequestID: requestID, Log: requestID + "_restore_log.txt", Actor: a}
}

// PreAddition is the backup every addition to CompletedRun must take.
func PreAddition(version int64) domain.Backup {
	return domain.Backup{Version: version, Config: Config(Settings, "epoch01", "epoch02"), Products: Products("epoch01", "epoch02")}
}

// EveryKindOfEvent returns an event of each kind (two processing requests:
// a full re-run and an addition), with the job ID "job" and the restore
// request ID "restore" that the states of domain's TestLeavesArtifacts use.
func EveryKindOfEvent() []domain.Event {
	p := Products("epoch09")
	return []domain.Event{
		domain.RunCreated{Name: "r", Config: Config(Settings, "epoch01")},
		domain.ConfigUpdated{Config: Config(Settings, "epoch01", "epoch02")},
		domain.ProcessingRequested{JobID: "job", Mode: domain.ModeFull, Config: Config(Settings, "epoch01")},
		domain.ProcessingRequested{JobID: "job", Mode: domain.ModeAdd, Config: Config(Settings, "epoch01"), Backup: &domain.Backup{Products: p}},
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
