// Package apitypes holds the shapes of piperun's HTTP API: the run
// resources and the headers that carry log positions. The API server, the
// web pages and the Go client share them, so a client of the API needs
// neither the read models nor the router.
package apitypes

import (
	"encoding/json"
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

// EventView is an event as the API shows it.
type EventView struct {
	Version  int64           `json:"version"`
	Position int64           `json:"position"`
	Type     string          `json:"type"`
	Time     time.Time       `json:"time"`
	Actor    string          `json:"actor"`
	Data     json.RawMessage `json:"data"`
}

// Headers that carry log positions between the API's replicas and their
// clients (read-your-writes on any replica).
const (
	// PositionHeader carries, in a command's answer, the log position the
	// command reached.
	PositionHeader = "Piperun-Position"
	// MinPositionHeader asks the replica that serves a request to wait
	// until its read models reach the position.
	MinPositionHeader = "Piperun-Min-Position"
)
