package projections

import (
	"time"

	"github.com/piperun/piperun/domain"
)

// LogInfo describes one log file of a run.
type LogInfo struct {
	Name    string         `json:"name"`
	Kind    domain.LogKind `json:"kind"`
	Created time.Time      `json:"created"`
}

// RunSummary is a row of the run list.
type RunSummary struct {
	Name        string        `json:"name"`
	Description string        `json:"description"`
	Owner       string        `json:"owner"`
	Status      domain.Status `json:"status"`
	Version     int64         `json:"version"`
	NImages     int           `json:"n_images"`
	NSources    int           `json:"n_sources"`
	Updated     time.Time     `json:"updated"`
}

// RunDetail is the run detail page's model and the API's run resource.
type RunDetail struct {
	Name                string                `json:"name"`
	Description         string                `json:"description"`
	Owner               string                `json:"owner"`
	Status              domain.Status         `json:"status"`
	Version             int64                 `json:"version"`
	NImages             int                   `json:"n_images"`
	NSources            int                   `json:"n_sources"`
	NSelavyMeasurements int                   `json:"n_selavy_measurements"`
	NForcedMeasurements int                   `json:"n_forced_measurements"`
	NNewSources         int                   `json:"n_new_sources"`
	NMeasurementPairs   int                   `json:"n_measurement_pairs"`
	Config              string                `json:"config"`
	RestoreAvailable    bool                  `json:"restore_available"`
	Images              []domain.ImageSummary `json:"images"`
	Products            []domain.Artifact     `json:"products"`
	Logs                []LogInfo             `json:"logs"`
	Created             time.Time             `json:"created"`
	Updated             time.Time             `json:"updated"`
	// Mode is the pending job's mode ("full" or "add") while one is queued
	// or running.
	Mode domain.JobMode `json:"mode,omitempty"`
}

// View derives the detail model from a run's state. The API's
// ?version=N replays the stream and calls View on the old state, so both
// paths give the same shape.
func View(r domain.Run) RunDetail {
	f := r.Figures()
	d := RunDetail{
		Name: r.Name, Description: r.Description, Owner: r.Owner, Status: r.Status, Version: r.Version,
		NImages: f.NImages, NSources: f.NSources, NSelavyMeasurements: f.NSelavyMeasurements,
		NForcedMeasurements: f.NForcedMeasurements, NNewSources: f.NNewSources, NMeasurementPairs: f.NMeasurementPairs,
		Config: r.Config.YAML, RestoreAvailable: r.RestoreAvailable(),
		Images: []domain.ImageSummary{}, Products: []domain.Artifact{}, Logs: []LogInfo{},
		Created: r.Created, Updated: r.Updated,
	}
	if r.Products != nil {
		d.Images = append(d.Images, r.Products.Images...)
		d.Products = append(d.Products, r.Products.Artifacts...)
	}
	// Newest first, as the page lists them.
	for i := len(r.Logs) - 1; i >= 0; i-- {
		l := r.Logs[i]
		d.Logs = append(d.Logs, LogInfo{Name: l.Name, Kind: l.Kind, Created: l.Created})
	}
	if r.Job != nil {
		d.Mode = r.Job.Mode
	}
	return d
}

// Summary derives the run list row from a run's state.
func Summary(r domain.Run) RunSummary {
	f := r.Figures()
	return RunSummary{
		Name: r.Name, Description: r.Description, Owner: r.Owner, Status: r.Status, Version: r.Version,
		NImages: f.NImages, NSources: f.NSources, Updated: r.Updated,
	}
}
