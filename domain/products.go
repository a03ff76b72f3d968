package domain

import (
	"slices"
	"time"
)

// Inputs lists a run's input files. Paths are relative to the images root
// (slash-separated, cleaned, never escaping the root). Images[i], Selavy[i],
// Noise[i] and Background[i] belong to the same image.
type Inputs struct {
	Images     []string `json:"image"`
	Selavy     []string `json:"selavy"`
	Noise      []string `json:"noise"`
	Background []string `json:"background"`
	// Epochs gives the epoch name of each image when the configuration used
	// VAST's epoch mode (inputs as dictionaries keyed by epoch); nil
	// otherwise. Same length as Images when set.
	Epochs []string `json:"epochs,omitempty"`
}

// RunConfig is a validated run configuration.
type RunConfig struct {
	// YAML is the configuration as the user wrote it.
	YAML string `json:"yaml"`
	// Inputs are the input files read from YAML.
	Inputs Inputs `json:"inputs"`
	// SettingsDigest is the hex SHA-256 of the canonical form of every
	// setting except the inputs. Adding images requires it to be unchanged.
	SettingsDigest string `json:"settings_digest"`
}

// Artifact is one immutable, content-addressed product file.
type Artifact struct {
	// Name is the product's file name in the run, e.g. "images.parquet" or
	// "measurements/epoch01.parquet".
	Name string `json:"name"`
	// Digest is "sha256:<hex>" of the file's bytes.
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// Figures are a run's headline counts.
type Figures struct {
	NImages             int `json:"n_images"`
	NSources            int `json:"n_sources"`
	NSelavyMeasurements int `json:"n_selavy_measurements"`
	NForcedMeasurements int `json:"n_forced_measurements"`
	NNewSources         int `json:"n_new_sources"`
	// NMeasurementPairs counts the rows of the measurement_pairs product
	// (0 when pair metrics are off).
	NMeasurementPairs int `json:"n_measurement_pairs"`
}

// ImageSummary describes one processed image, as read from its FITS header
// and catalogue.
type ImageSummary struct {
	Name          string    `json:"name"` // file name without directory, e.g. "epoch01.fits"
	Path          string    `json:"path"` // relative to the images root
	Epoch         string    `json:"epoch,omitempty"`
	DateTime      time.Time `json:"datetime"`
	FrequencyMHz  float64   `json:"frequency_mhz"`
	BMajDeg       float64   `json:"beam_bmaj"`
	BMinDeg       float64   `json:"beam_bmin"`
	BPADeg        float64   `json:"beam_bpa"`
	RADeg         float64   `json:"ra"`
	DecDeg        float64   `json:"dec"`
	NMeasurements int       `json:"n_meas"`
}

// Products is what a successful processing job produced.
type Products struct {
	Artifacts []Artifact     `json:"artifacts"`
	Figures   Figures        `json:"figures"`
	Images    []ImageSummary `json:"images"`
}

// Clone returns a deep copy, so that state snapshots never share slices.
func (p Products) Clone() Products {
	c := p
	c.Artifacts = append([]Artifact(nil), p.Artifacts...)
	c.Images = append([]ImageSummary(nil), p.Images...)
	return c
}

// Clone returns a deep copy.
func (c RunConfig) Clone() RunConfig {
	d := c
	d.Inputs.Images = append([]string(nil), c.Inputs.Images...)
	d.Inputs.Selavy = append([]string(nil), c.Inputs.Selavy...)
	d.Inputs.Noise = append([]string(nil), c.Inputs.Noise...)
	d.Inputs.Background = append([]string(nil), c.Inputs.Background...)
	if c.Inputs.Epochs != nil {
		d.Inputs.Epochs = append([]string(nil), c.Inputs.Epochs...)
	}
	return d
}

// ExactClone is a deep copy that keeps nil and empty slices apart, so that
// a copy of a state is equal to it (Clone makes empty slices nil).
func (p Products) ExactClone() Products {
	c := p
	c.Artifacts = slices.Clone(p.Artifacts)
	c.Images = slices.Clone(p.Images)
	return c
}

// ExactClone is a deep copy that keeps nil and empty slices apart.
func (c RunConfig) ExactClone() RunConfig {
	d := c
	d.Inputs.Images = slices.Clone(c.Inputs.Images)
	d.Inputs.Selavy = slices.Clone(c.Inputs.Selavy)
	d.Inputs.Noise = slices.Clone(c.Inputs.Noise)
	d.Inputs.Background = slices.Clone(c.Inputs.Background)
	d.Inputs.Epochs = slices.Clone(c.Inputs.Epochs)
	return d
}
