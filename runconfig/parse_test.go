package runconfig

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// example is the configuration of VAST's documentation; every setting in it
// holds VAST's default.
const example = `run:
  path: docs_example_run        # optional; informational here
  suppress_astropy_warnings: true
inputs:
  image:
  - data/epoch01.fits
  - data/epoch02.fits
  selavy:
  - data/epoch01.selavy.components.txt
  - data/epoch02.selavy.components.txt
  noise:
  - data/epoch01.noiseMap.fits
  - data/epoch02.noiseMap.fits
  background:
  - data/epoch01.meanMap.fits
  - data/epoch02.meanMap.fits
source_monitoring:
  monitor: false
  min_sigma: 3.0
  edge_buffer_scale: 1.2
  cluster_threshold: 3.0
  allow_nan: false
source_association:
  method: basic            # basic | advanced | deruiter
  radius: 10.0             # arcsec
  deruiter_radius: 5.68
  deruiter_beamwidth_limit: 1.5
  parallel: false
  epoch_duplicate_radius: 2.5
new_sources:
  min_sigma: 5.0
measurements:
  source_finder: selavy
  flux_fractional_error: 0.0
  condon_errors: true
  selavy_local_rms_fill_value: 0.2
  write_arrow_files: false
  ra_uncertainty: 1
  dec_uncertainty: 1
variability:
  source_aggregate_pair_metrics_min_abs_vs: 4.3
`

// minimal has only the required inputs.
const minimal = `inputs:
  image: [a.fits, b.fits]
  selavy: [a.txt, b.txt]
  noise: [a.noise.fits, b.noise.fits]
`

// epochExample uses VAST's epoch mode, with epochs written out of
// lexical order to show that the written order is kept.
const epochExample = `inputs:
  image:
    "02": [e2a.fits, e2b.fits]
    "01": [e1.fits]
  selavy:
    "01": [e1.txt]
    "02": [e2a.txt, e2b.txt]
  noise:
    "02": [e2a.noise.fits, e2b.noise.fits]
    "01": [e1.noise.fits]
`

// vastDefaults spells out VAST's defaults independently of defaults(), so
// that a wrong default there is caught.
var vastDefaults = Config{
	Run:               Run{SuppressAstropyWarnings: true},
	SourceMonitoring:  SourceMonitoring{Monitor: false, MinSigma: 3.0, EdgeBufferScale: 1.2, ClusterThreshold: 3.0, AllowNaN: false},
	SourceAssociation: SourceAssociation{Method: "basic", Radius: 10.0, DeRuiterRadius: 5.68, DeRuiterBeamwidthLimit: 1.5, Parallel: false, EpochDuplicateRadius: 2.5},
	NewSources:        NewSources{MinSigma: 5.0},
	Measurements:      Measurements{SourceFinder: "selavy", FluxFractionalError: 0, CondonErrors: true, SelavyLocalRMSFillValue: 0.2, WriteArrowFiles: false, RAUncertainty: 1, DecUncertainty: 1},
	Variability:       Variability{PairMetrics: true, SourceAggregatePairMetricsMinAbsVS: 4.3},
	Processing:        Processing{NumWorkers: 0, NumWorkersIO: 5, MaxPartitionMB: 15},
}

// settingsOf drops what is not a setting, for comparing settings only.
func settingsOf(c *Config) Config {
	s := *c
	s.Run.Path = ""
	s.Inputs = vastDefaults.Inputs
	s.text = ""
	return s
}

// edit replaces the single occurrence of old in text with new.
func edit(t *testing.T, text, old, new string) string {
	t.Helper()
	if n := strings.Count(text, old); n != 1 {
		t.Fatalf("edit: %q occurs %d times, want once", old, n)
	}
	return strings.Replace(text, old, new, 1)
}

func mustParse(t *testing.T, text string) *Config {
	t.Helper()
	c, err := Parse([]byte(text))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

// validationFields returns the fields of err's problems, failing the test
// if err is not a *ValidationError with at least one problem.
func validationFields(t *testing.T, err error) []string {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *ValidationError", err, err)
	}
	if len(ve.Problems) == 0 {
		t.Fatal("ValidationError without problems")
	}
	for _, p := range ve.Problems {
		if p.Message == "" {
			t.Errorf("problem %+v has no message", p)
		}
	}
	return ve.Fields()
}

func TestParseExample(t *testing.T) {
	c := mustParse(t, example)
	if got := settingsOf(c); !reflect.DeepEqual(got, vastDefaults) {
		t.Errorf("settings = %+v\nwant %+v", got, vastDefaults)
	}
	if c.Run.Path != "docs_example_run" {
		t.Errorf("run.path = %q", c.Run.Path)
	}
	want := []string{"data/epoch01.fits", "data/epoch02.fits"}
	if !slices.Equal(c.Inputs.Images, want) {
		t.Errorf("images = %q, want %q", c.Inputs.Images, want)
	}
	if got := c.Inputs.Background; !slices.Equal(got, []string{"data/epoch01.meanMap.fits", "data/epoch02.meanMap.fits"}) {
		t.Errorf("background = %q", got)
	}
	if c.Inputs.Epochs != nil {
		t.Errorf("epochs = %q, want nil outside epoch mode", c.Inputs.Epochs)
	}
	d := c.Domain()
	if d.YAML != example {
		t.Error("Domain().YAML differs from the text parsed")
	}
	if !reflect.DeepEqual(d.Inputs, c.Inputs) {
		t.Errorf("Domain().Inputs = %+v, want %+v", d.Inputs, c.Inputs)
	}
}

func TestParseAppliesDefaults(t *testing.T) {
	c := mustParse(t, minimal)
	if got := settingsOf(c); !reflect.DeepEqual(got, vastDefaults) {
		t.Errorf("settings = %+v\nwant %+v", got, vastDefaults)
	}
	if c.Inputs.Background != nil {
		t.Errorf("background = %q, want none", c.Inputs.Background)
	}
	// A section left empty keeps its defaults too.
	c = mustParse(t, minimal+"source_association:\nmeasurements: {}\n")
	if got := settingsOf(c); !reflect.DeepEqual(got, vastDefaults) {
		t.Errorf("with empty sections, settings = %+v\nwant %+v", got, vastDefaults)
	}
	// A partly given section keeps the defaults of the rest.
	c = mustParse(t, minimal+"source_association:\n  radius: 3\n")
	want := vastDefaults
	want.SourceAssociation.Radius = 3
	if got := settingsOf(c); !reflect.DeepEqual(got, want) {
		t.Errorf("with radius 3, settings = %+v\nwant %+v", got, want)
	}
}

// TestParseEverySetting gives every setting a value other than its default
// and checks each lands in its own field.
func TestParseEverySetting(t *testing.T) {
	text := minimal + `run:
  path: elsewhere
  suppress_astropy_warnings: false
source_monitoring:
  monitor: true
  min_sigma: 3.5
  edge_buffer_scale: 1.7
  cluster_threshold: 4.5
  allow_nan: true
source_association:
  method: deruiter
  radius: 12.5
  deruiter_radius: 6.1
  deruiter_beamwidth_limit: 2.5
  parallel: true
  epoch_duplicate_radius: 3.25
new_sources:
  min_sigma: 6.5
measurements:
  source_finder: selavy
  flux_fractional_error: 0.05
  condon_errors: false
  selavy_local_rms_fill_value: 0.3
  write_arrow_files: true
  ra_uncertainty: 1.5
  dec_uncertainty: 2
variability:
  pair_metrics: false
  source_aggregate_pair_metrics_min_abs_vs: 5.1
processing:
  num_workers: 3
  num_workers_io: null
  max_partition_mb: 40
`
	text = edit(t, text, "  noise: [a.noise.fits, b.noise.fits]\n", "  noise: [a.noise.fits, b.noise.fits]\n  background: [a.bg.fits, b.bg.fits]\n")
	c := mustParse(t, text)
	want := Config{
		Run:               Run{Path: "elsewhere", SuppressAstropyWarnings: false},
		SourceMonitoring:  SourceMonitoring{Monitor: true, MinSigma: 3.5, EdgeBufferScale: 1.7, ClusterThreshold: 4.5, AllowNaN: true},
		SourceAssociation: SourceAssociation{Method: "deruiter", Radius: 12.5, DeRuiterRadius: 6.1, DeRuiterBeamwidthLimit: 2.5, Parallel: true, EpochDuplicateRadius: 3.25},
		NewSources:        NewSources{MinSigma: 6.5},
		Measurements:      Measurements{SourceFinder: "selavy", FluxFractionalError: 0.05, CondonErrors: false, SelavyLocalRMSFillValue: 0.3, WriteArrowFiles: true, RAUncertainty: 1.5, DecUncertainty: 2},
		Variability:       Variability{PairMetrics: false, SourceAggregatePairMetricsMinAbsVS: 5.1},
		Processing:        Processing{NumWorkers: 3, NumWorkersIO: 0, MaxPartitionMB: 40},
	}
	got := *c
	got.Inputs, got.text = want.Inputs, ""
	if !reflect.DeepEqual(got, want) {
		t.Errorf("settings = %+v\nwant %+v", got, want)
	}
}

func TestParseValidation(t *testing.T) {
	tests := []struct {
		name string
		old  string // a line of example; "" leaves it unchanged
		new  string
		want []string // fields with problems; nil means valid
	}{
		{"example is valid", "", "", nil},

		// Ranges and enumerations.
		{"radius zero", "radius: 10.0", "radius: 0", []string{"source_association.radius"}},
		{"radius negative", "radius: 10.0", "radius: -2", []string{"source_association.radius"}},
		{"radius small but positive", "radius: 10.0", "radius: 0.001", nil},
		{"deruiter radius zero", "deruiter_radius: 5.68", "deruiter_radius: 0", []string{"source_association.deruiter_radius"}},
		{"beamwidth limit zero", "deruiter_beamwidth_limit: 1.5", "deruiter_beamwidth_limit: 0", []string{"source_association.deruiter_beamwidth_limit"}},
		{"epoch duplicate radius negative", "epoch_duplicate_radius: 2.5", "epoch_duplicate_radius: -1", []string{"source_association.epoch_duplicate_radius"}},
		{"epoch duplicate radius zero", "epoch_duplicate_radius: 2.5", "epoch_duplicate_radius: 0", nil},
		{"method unknown", "method: basic ", "method: nearest ", []string{"source_association.method"}},
		{"method advanced", "method: basic ", "method: advanced ", nil},
		{"method deruiter", "method: basic ", "method: deruiter ", nil},
		{"method is case sensitive", "method: basic ", "method: Basic ", []string{"source_association.method"}},
		{"monitor min_sigma negative", "min_sigma: 3.0", "min_sigma: -0.5", []string{"source_monitoring.min_sigma"}},
		{"monitor min_sigma zero", "min_sigma: 3.0", "min_sigma: 0", nil},
		{"new sources min_sigma negative", "min_sigma: 5.0", "min_sigma: -1", []string{"new_sources.min_sigma"}},
		{"edge buffer scale negative", "edge_buffer_scale: 1.2", "edge_buffer_scale: -1.2", []string{"source_monitoring.edge_buffer_scale"}},
		{"cluster threshold negative", "cluster_threshold: 3.0", "cluster_threshold: -3", []string{"source_monitoring.cluster_threshold"}},
		{"flux fractional error negative", "flux_fractional_error: 0.0", "flux_fractional_error: -0.1", []string{"measurements.flux_fractional_error"}},
		{"rms fill value negative", "selavy_local_rms_fill_value: 0.2", "selavy_local_rms_fill_value: -0.2", []string{"measurements.selavy_local_rms_fill_value"}},
		{"ra uncertainty negative", "ra_uncertainty: 1", "ra_uncertainty: -1", []string{"measurements.ra_uncertainty"}},
		{"dec uncertainty negative", "dec_uncertainty: 1", "dec_uncertainty: -1", []string{"measurements.dec_uncertainty"}},
		{"uncertainty zero", "ra_uncertainty: 1", "ra_uncertainty: 0", nil},
		{"min abs vs negative", "min_abs_vs: 4.3", "min_abs_vs: -4.3", []string{"variability.source_aggregate_pair_metrics_min_abs_vs"}},
		{"source finder aegean", "source_finder: selavy", "source_finder: aegean", []string{"measurements.source_finder"}},
		{"not a number", "radius: 10.0", "radius: .nan", []string{"source_association.radius"}},
		{"infinite", "min_sigma: 5.0", "min_sigma: .inf", []string{"new_sources.min_sigma"}},
		{"infinite without a range rule", "cluster_threshold: 3.0", "cluster_threshold: .inf", []string{"source_monitoring.cluster_threshold"}},

		// Types.
		{"number as word", "radius: 10.0", "radius: ten", []string{"source_association.radius"}},
		{"quoted number", "radius: 10.0", `radius: "10"`, []string{"source_association.radius"}},
		{"number as list", "radius: 10.0", "radius: [10]", []string{"source_association.radius"}},
		{"integer is a number", "radius: 10.0", "radius: 10", nil},
		{"exponent is a number", "radius: 10.0", "radius: 1e1", nil},
		{"bool as yes", "monitor: false", "monitor: yes", []string{"source_monitoring.monitor"}},
		{"bool as number", "parallel: false", "parallel: 0", []string{"source_association.parallel"}},
		{"bool capitalised", "parallel: false", "parallel: False", nil},
		{"string as list", "method: basic ", "method: [basic] ", []string{"source_association.method"}},
		{"string tagged as int", "method: basic ", "method: !!int 1 ", []string{"source_association.method"}},
		{"value missing", "radius: 10.0", "radius:", []string{"source_association.radius"}},
		{"section as scalar", "new_sources:\n  min_sigma: 5.0", "new_sources: 5", []string{"new_sources"}},
		{"section as list", "new_sources:\n  min_sigma: 5.0", "new_sources:\n  - min_sigma: 5.0", []string{"new_sources"}},
		{"run path as mapping", "path: docs_example_run ", "path: {a: b} ", []string{"run.path"}},

		// Keys.
		{"unknown top-level key", "new_sources:", "pipeline:\n  num_workers: 2\nnew_sources:", []string{"pipeline"}},
		{"num_workers zero", "new_sources:", "processing:\n  num_workers: 0\nnew_sources:", []string{"processing.num_workers"}},
		{"num_workers a string", "new_sources:", "processing:\n  num_workers: four\nnew_sources:", []string{"processing.num_workers"}},
		{"num_workers_io fractional", "new_sources:", "processing:\n  num_workers_io: 2.5\nnew_sources:", []string{"processing.num_workers_io"}},
		{"max_partition_mb null", "new_sources:", "processing:\n  max_partition_mb: null\nnew_sources:", []string{"processing.max_partition_mb"}},
		{"max_partition_mb zero", "new_sources:", "processing:\n  max_partition_mb: 0\nnew_sources:", []string{"processing.max_partition_mb"}},
		{"pair_metrics not a bool", "  source_aggregate_pair_metrics_min_abs_vs: 4.3", "  pair_metrics: yes please\n  source_aggregate_pair_metrics_min_abs_vs: 4.3", []string{"variability.pair_metrics"}},
		{"unknown setting", "radius: 10.0", "radius_arcsec: 10.0", []string{"source_association.radius_arcsec"}},
		{"unknown run key", "suppress_astropy_warnings: true", "suppress_warnings: true", []string{"run.suppress_warnings"}},
		{"unknown inputs key", "  background:", "  images: [x.fits]\n  background:", []string{"inputs.images"}},
		{"duplicate key", "radius: 10.0", "radius: 10.0\n  radius: 11.0", []string{"source_association.radius"}},
		{"duplicate section", "new_sources:\n  min_sigma: 5.0", "new_sources:\n  min_sigma: 5.0\nnew_sources:\n  min_sigma: 5.0", []string{"new_sources"}},
		{"merge key", "new_sources:\n  min_sigma: 5.0", "new_sources:\n  <<: {min_sigma: 5.0}", []string{"new_sources.<<"}},

		// Inputs present.
		{"inputs missing", "inputs:\n  image:", "elsewhere:\n  image:", []string{"inputs", "elsewhere"}},
		{"image missing", "  image:\n  - data/epoch01.fits\n  - data/epoch02.fits\n", "", []string{"inputs.image"}},
		{"selavy missing", "  selavy:\n  - data/epoch01.selavy.components.txt\n  - data/epoch02.selavy.components.txt\n", "", []string{"inputs.selavy"}},
		{"noise missing", "  noise:\n  - data/epoch01.noiseMap.fits\n  - data/epoch02.noiseMap.fits\n", "", []string{"inputs.noise"}},
		{"noise left empty", "  noise:\n  - data/epoch01.noiseMap.fits\n  - data/epoch02.noiseMap.fits\n", "  noise:\n", []string{"inputs.noise"}},
		{"background optional without monitoring", "  background:\n  - data/epoch01.meanMap.fits\n  - data/epoch02.meanMap.fits\n", "", nil},
		{"monitoring with background", "monitor: false", "monitor: true", nil},
		{"background required when monitoring", "  background:\n  - data/epoch01.meanMap.fits\n  - data/epoch02.meanMap.fits\nsource_monitoring:\n  monitor: false\n", "source_monitoring:\n  monitor: true\n", []string{"inputs.background"}},
		{"images listed empty", "  image:\n  - data/epoch01.fits\n  - data/epoch02.fits\n", "  image: []\n", []string{"inputs.image", "inputs.selavy", "inputs.noise", "inputs.background"}},
		{"glob patterns", "  image:\n  - data/epoch01.fits\n  - data/epoch02.fits\n", "  image:\n    glob: data/*.fits\n", []string{"inputs.image.glob"}},
		{"image as scalar", "  image:\n  - data/epoch01.fits\n  - data/epoch02.fits\n", "  image: data/epoch01.fits\n", []string{"inputs.image"}},
		{"inputs as list", "inputs:\n", "inputs: []\nignored:\n", []string{"inputs", "ignored"}},

		// Inputs pair up.
		{"selavy short", "  - data/epoch02.selavy.components.txt\n", "", []string{"inputs.selavy"}},
		{"noise long", "  - data/epoch02.noiseMap.fits\n", "  - data/epoch02.noiseMap.fits\n  - data/epoch03.noiseMap.fits\n", []string{"inputs.noise"}},
		{"background short", "  - data/epoch02.meanMap.fits\n", "", []string{"inputs.background"}},
		{"duplicate image", "  - data/epoch02.fits\n", "  - data/epoch01.fits\n", []string{"inputs.image[1]"}},
		{"duplicate image once cleaned", "  - data/epoch02.fits\n", "  - ./data//epoch01.fits\n", []string{"inputs.image[1]"}},
		{"duplicate selavy allowed", "  - data/epoch02.selavy.components.txt\n", "  - data/epoch01.selavy.components.txt\n", nil},

		// Paths.
		{"empty path", "  - data/epoch01.selavy.components.txt\n", "  - \"\"\n", []string{"inputs.selavy[0]"}},
		{"blank path", "  - data/epoch01.selavy.components.txt\n", "  - \"  \"\n", []string{"inputs.selavy[0]"}},
		{"null path", "  - data/epoch01.selavy.components.txt\n", "  - ~\n", []string{"inputs.selavy[0]"}},
		{"path as mapping", "  - data/epoch02.noiseMap.fits\n", "  - {a: b}\n", []string{"inputs.noise[1]"}},
		{"absolute path", "  - data/epoch02.fits\n", "  - /etc/passwd\n", []string{"inputs.image[1]"}},
		{"parent path", "  - data/epoch02.fits\n", "  - ../x.fits\n", []string{"inputs.image[1]"}},
		{"escaping path", "  - data/epoch02.fits\n", "  - a/../../x.fits\n", []string{"inputs.image[1]"}},
		{"root itself", "  - data/epoch02.fits\n", "  - ./\n", []string{"inputs.image[1]"}},
		{"dotdot inside", "  - data/epoch02.fits\n", "  - data/x/../epoch02.fits\n", nil},
		{"numeric path is text", "  - data/epoch02.fits\n", "  - 2024\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := example
			if tt.old != "" {
				text = edit(t, text, tt.old, tt.new)
			}
			_, err := Parse([]byte(text))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse accepted it; want problems with %q", tt.want)
			}
			got := validationFields(t, err)
			if !slices.Equal(got, tt.want) {
				t.Errorf("problems with %q, want %q\n%v", got, tt.want, err)
			}
			for _, f := range tt.want {
				if !strings.Contains(err.Error(), f) {
					t.Errorf("Error() does not name %s: %v", f, err)
				}
			}
		})
	}
}

func TestParseEpochMode(t *testing.T) {
	c := mustParse(t, epochExample)
	in := c.Inputs
	checks := []struct {
		name      string
		got, want []string
	}{
		{"images", in.Images, []string{"e2a.fits", "e2b.fits", "e1.fits"}},
		{"epochs", in.Epochs, []string{"02", "02", "01"}},
		{"selavy", in.Selavy, []string{"e2a.txt", "e2b.txt", "e1.txt"}},
		{"noise", in.Noise, []string{"e2a.noise.fits", "e2b.noise.fits", "e1.noise.fits"}},
	}
	for _, ch := range checks {
		if !slices.Equal(ch.got, ch.want) {
			t.Errorf("%s = %q, want %q", ch.name, ch.got, ch.want)
		}
	}
	if in.Background != nil {
		t.Errorf("background = %q, want none", in.Background)
	}
}

func TestParseEpochModeValidation(t *testing.T) {
	tests := []struct {
		name     string
		old, new string
		want     []string
	}{
		{"background by epoch", "  noise:\n", "  background:\n    \"01\": [e1.bg.fits]\n    \"02\": [e2a.bg.fits, e2b.bg.fits]\n  noise:\n", nil},
		{"unquoted epoch names", `"01": [e1.fits]`, `01: [e1.fits]`, nil},
		{"mixed modes", "  selavy:\n    \"01\": [e1.txt]\n    \"02\": [e2a.txt, e2b.txt]\n", "  selavy: [e1.txt, e2a.txt, e2b.txt]\n", []string{"inputs.selavy"}},
		{"list image, mapping selavy", "  image:\n    \"02\": [e2a.fits, e2b.fits]\n    \"01\": [e1.fits]\n", "  image: [e2a.fits, e2b.fits, e1.fits]\n", []string{"inputs.selavy", "inputs.noise"}},
		{"epoch missing", "    \"01\": [e1.txt]\n", "", []string{"inputs.selavy"}},
		{"epoch extra", "    \"01\": [e1.noise.fits]\n", "    \"01\": [e1.noise.fits]\n    \"03\": [e3.noise.fits]\n", []string{"inputs.noise.03"}},
		{"epoch count differs", "\"02\": [e2a.txt, e2b.txt]", "\"02\": [e2a.txt]", []string{"inputs.selavy.02"}},
		{"epoch repeated", "    \"01\": [e1.fits]\n", "    \"01\": [e1.fits]\n    \"01\": [e1b.fits]\n", []string{"inputs.image.01"}},
		{"epoch not a list", `"01": [e1.fits]`, `"01": e1.fits`, []string{"inputs.image.01"}},
		{"epoch empty", `"01": [e1.fits]`, `"01": []`, []string{"inputs.image.01", "inputs.selavy.01", "inputs.noise.01"}},
		{"epoch name null", `"01": [e1.fits]`, `~: [e1.fits]`, []string{"inputs.image"}},
		{"no epochs", "  image:\n    \"02\": [e2a.fits, e2b.fits]\n    \"01\": [e1.fits]\n", "  image: {}\n", []string{"inputs.image", "inputs.selavy.01", "inputs.selavy.02", "inputs.noise.02", "inputs.noise.01"}},
		{"image repeated across epochs", `"01": [e1.fits]`, `"01": [e2b.fits]`, []string{"inputs.image.01[0]"}},
		{"bad path in epoch", `"01": [e1.fits]`, `"01": [../e1.fits]`, []string{"inputs.image.01[0]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := edit(t, epochExample, tt.old, tt.new)
			_, err := Parse([]byte(text))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse accepted it; want problems with %q", tt.want)
			}
			if got := validationFields(t, err); !slices.Equal(got, tt.want) {
				t.Errorf("problems with %q, want %q\n%v", got, tt.want, err)
			}
		})
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	text := edit(t, example, "radius: 10.0", "radius: -1")
	text = edit(t, text, "monitor: false", "monitor: maybe")
	text = edit(t, text, "source_finder: selavy", "source_finder: aegean\n  colour: red")
	text = edit(t, text, "  - data/epoch02.selavy.components.txt\n", "")
	_, err := Parse([]byte(text))
	// In document order, whatever order the checks ran in.
	want := []string{"inputs.selavy", "source_monitoring.monitor", "source_association.radius", "measurements.source_finder", "measurements.colour"}
	got := validationFields(t, err)
	if !slices.Equal(got, want) {
		t.Errorf("problems with %q, want %q\n%v", got, want, err)
	}
	var ve *ValidationError
	errors.As(err, &ve)
	for _, p := range ve.Problems {
		if p.Line == 0 {
			t.Errorf("problem %+v has no line", p)
		}
	}
}

func TestParseMalformed(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"empty", "", "inputs"},
		{"only comments", "# nothing here\n", "inputs"},
		{"syntax error", "inputs:\n  image: [a.fits\n", "invalid YAML"},
		{"tab indentation", "inputs:\n\timage: []\n", "invalid YAML"},
		{"top level list", "- inputs\n", "mapping"},
		{"top level scalar", "inputs\n", "mapping"},
		{"two documents", minimal + "---\n" + minimal, "more than one document"},
		{"unknown alias", "inputs: *nowhere\n", "invalid YAML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.text))
			if err == nil {
				t.Fatal("Parse accepted it")
			}
			validationFields(t, err)
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestParseAliases(t *testing.T) {
	text := `inputs:
  image: &images [a.fits, b.fits]
  selavy: [a.txt, b.txt]
  noise: [a.noise.fits, b.noise.fits]
source_association:
  radius: &r 12.0
  epoch_duplicate_radius: *r
`
	c := mustParse(t, text)
	if c.SourceAssociation.EpochDuplicateRadius != 12 {
		t.Errorf("epoch_duplicate_radius = %v, want 12 through the alias", c.SourceAssociation.EpochDuplicateRadius)
	}
	_, err := Parse([]byte(edit(t, text, "noise: [a.noise.fits, b.noise.fits]", "noise: *images")))
	if err != nil {
		t.Errorf("alias to a list: %v", err)
	}
}

func TestParseSizeLimit(t *testing.T) {
	pad := func(n int) []byte {
		b := []byte(example + "#")
		for len(b) < n-1 {
			b = append(b, 'x')
		}
		return append(b, '\n')
	}
	if _, err := Parse(pad(MaxSize)); err != nil {
		t.Errorf("a configuration of exactly MaxSize bytes: %v", err)
	}
	_, err := Parse(pad(MaxSize + 1))
	if err == nil {
		t.Fatal("Parse accepted a configuration over MaxSize")
	}
	validationFields(t, err)
	if !strings.Contains(err.Error(), "limit") {
		t.Errorf("error %q does not mention the limit", err)
	}
}

// TestParseVASTConfig parses the configuration VAST's own test suite ran,
// whose paths are relative to the VAST repository.
func TestParseVASTConfig(t *testing.T) {
	data := vastTestData(t)
	text, err := os.ReadFile(filepath.Join(data, "expected", "basic-association", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c := mustParse(t, string(text))
	if n := len(c.Inputs.Images); n != 4 {
		t.Fatalf("%d images, want 4", n)
	}
	if got, want := c.Inputs.Selavy[3], "vast_pipeline/tests/data/epoch04.selavy.components.txt"; got != want {
		t.Errorf("selavy[3] = %q, want %q", got, want)
	}
	if c.SourceAssociation.Method != "basic" || c.SourceAssociation.Radius != 10 || c.SourceMonitoring.Monitor {
		t.Errorf("association %+v, monitoring %+v", c.SourceAssociation, c.SourceMonitoring)
	}
	// Settings it leaves out take the defaults, so its digest is that of
	// the defaults.
	if got, want := c.SettingsDigest(), mustParse(t, minimal).SettingsDigest(); got != want {
		t.Errorf("digest %s, want the defaults' %s", got, want)
	}
	if err := c.CheckPaths(t.TempDir(), false); err != nil {
		t.Errorf("CheckPaths without existence: %v", err)
	}
	if err := c.CheckPaths(data, true); err == nil {
		t.Error("CheckPaths found VAST-repository paths in the test data directory")
	}
	// Pointed at the data directory, as its README says, every file exists.
	c = mustParse(t, strings.ReplaceAll(string(text), "vast_pipeline/tests/data/", "data/"))
	if err := c.CheckPaths(data, true); err != nil {
		t.Errorf("CheckPaths on the shared data: %v", err)
	}
}

// TestParseEveryVASTConfig parses every configuration in the shared VAST
// data: the 2020 test runs' and the ones the current VAST code wrote (with
// its `processing` section and `variability.pair_metrics`), and checks the
// settings each states are the ones read.
func TestParseEveryVASTConfig(t *testing.T) {
	data := vastTestData(t)
	paths, err := filepath.Glob(filepath.Join(data, "expected", "*", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	current, err := filepath.Glob(filepath.Join(data, "expected", "current-vast", "*", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 6 || len(current) < 7 {
		t.Fatalf("found %d 2020 and %d current configurations, want 6 and 7", len(paths), len(current))
	}
	for _, p := range append(paths, current...) {
		rel, _ := filepath.Rel(data, p)
		t.Run(rel, func(t *testing.T) {
			text, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			c := mustParse(t, string(text))
			if strings.Contains(rel, "forced") != c.SourceMonitoring.Monitor {
				t.Errorf("source_monitoring.monitor = %v", c.SourceMonitoring.Monitor)
			}
			if len(c.Inputs.Images) != 4 {
				t.Errorf("%d images, want 4", len(c.Inputs.Images))
			}
			if strings.Contains(rel, "current-vast") {
				// Written by VAST's initpiperun with one worker each.
				if !c.Variability.PairMetrics || c.Processing != (Processing{NumWorkers: 1, NumWorkersIO: 1, MaxPartitionMB: 15}) {
					t.Errorf("variability %+v, processing %+v", c.Variability, c.Processing)
				}
			}
		})
	}
}

// TestProcessingDefaults: null worker counts and an omitted section read
// as VAST's defaults (one less than the cores; five readers; 15 MB).
func TestProcessingDefaults(t *testing.T) {
	for name, text := range map[string]string{
		"omitted": minimal,
		"null":    minimal + "processing:\n  num_workers: null\n  num_workers_io: 5\n",
		"empty":   minimal + "processing:\n",
	} {
		if got := mustParse(t, text).Processing; got != (Processing{NumWorkers: 0, NumWorkersIO: 5, MaxPartitionMB: 15}) {
			t.Errorf("%s: processing %+v", name, got)
		}
	}
}
