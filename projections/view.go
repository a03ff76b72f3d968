package projections

import (
	"github.com/piperun/piperun/apitypes"

	"github.com/piperun/piperun/domain"
)

// The run resources are the API's (package apitypes); the read models
// build them.
type (
	LogInfo    = apitypes.LogInfo
	RunSummary = apitypes.RunSummary
	RunDetail  = apitypes.RunDetail
)

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
