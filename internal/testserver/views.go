package testserver

// RunView is a run as GET /api/v1/runs/{name} answers it, as far as the
// end-to-end tests look at it.
type RunView struct {
	Name                string         `json:"name"`
	Owner               string         `json:"owner"`
	Status              string         `json:"status"`
	Version             int64          `json:"version"`
	NImages             int            `json:"n_images"`
	NSources            int            `json:"n_sources"`
	NSelavyMeasurements int            `json:"n_selavy_measurements"`
	Config              string         `json:"config"`
	RestoreAvailable    bool           `json:"restore_available"`
	Images              []ImageView    `json:"images"`
	Products            []ArtifactView `json:"products"`
	Logs                []LogView      `json:"logs"`
}

// ImageView is an image of a run as the API lists it.
type ImageView struct {
	Name string `json:"name"`
	Path string `json:"path"`
}

// ArtifactView is a product as the API lists it.
type ArtifactView struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// LogView is a log of a run as the API lists it.
type LogView struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
}
