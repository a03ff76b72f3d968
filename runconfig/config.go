package runconfig

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"strconv"

	"github.com/piperun/piperun/domain"
)

// Association methods VAST offers.
const (
	MethodBasic    = "basic"
	MethodAdvanced = "advanced"
	MethodDeRuiter = "deruiter"
)

// SourceFinderSelavy is the only source finder whose catalogues VAST reads.
const SourceFinderSelavy = "selavy"

// Config is a parsed, validated run configuration with VAST's defaults
// filled in for every omitted setting.
type Config struct {
	Run Run
	// Inputs hold cleaned, slash-separated paths relative to the images
	// root; Epochs is set only in VAST's epoch mode.
	Inputs domain.Inputs
	// Settings below are what SettingsDigest covers.
	SourceMonitoring  SourceMonitoring
	SourceAssociation SourceAssociation
	NewSources        NewSources
	Measurements      Measurements
	Variability       Variability
	// Processing bounds the parallelism of processing. It does not change
	// results, so the settings digest leaves it out, as it does Run.
	Processing Processing

	// text is the YAML as written, kept so that Domain stores exactly what
	// the user submitted, comments and all.
	text string
}

// Run is the `run` section. Neither setting changes results, which is why
// the settings digest leaves it out.
type Run struct {
	Path                    string `json:"path"`
	SuppressAstropyWarnings bool   `json:"suppress_astropy_warnings"`
}

// SourceMonitoring is the `source_monitoring` section: forced extraction at
// the positions of sources not detected in an image.
type SourceMonitoring struct {
	Monitor          bool    `json:"monitor"`
	MinSigma         float64 `json:"min_sigma"`
	EdgeBufferScale  float64 `json:"edge_buffer_scale"`
	ClusterThreshold float64 `json:"cluster_threshold"`
	AllowNaN         bool    `json:"allow_nan"`
}

// SourceAssociation is the `source_association` section. Radii are in
// arcseconds except DeRuiterRadius, which is unitless.
type SourceAssociation struct {
	Method                 string  `json:"method"`
	Radius                 float64 `json:"radius"`
	DeRuiterRadius         float64 `json:"deruiter_radius"`
	DeRuiterBeamwidthLimit float64 `json:"deruiter_beamwidth_limit"`
	Parallel               bool    `json:"parallel"`
	EpochDuplicateRadius   float64 `json:"epoch_duplicate_radius"`
}

// NewSources is the `new_sources` section.
type NewSources struct {
	MinSigma float64 `json:"min_sigma"`
}

// Measurements is the `measurements` section. Uncertainties are in
// arcseconds; the RMS fill value in mJy/beam.
type Measurements struct {
	SourceFinder            string  `json:"source_finder"`
	FluxFractionalError     float64 `json:"flux_fractional_error"`
	CondonErrors            bool    `json:"condon_errors"`
	SelavyLocalRMSFillValue float64 `json:"selavy_local_rms_fill_value"`
	WriteArrowFiles         bool    `json:"write_arrow_files"`
	RAUncertainty           float64 `json:"ra_uncertainty"`
	DecUncertainty          float64 `json:"dec_uncertainty"`
}

// Variability is the `variability` section. PairMetrics computes the
// two-epoch metrics of every pair of a source's measurements (the
// measurement_pairs product) and the sources' aggregates of them.
type Variability struct {
	PairMetrics                        bool    `json:"pair_metrics"`
	SourceAggregatePairMetricsMinAbsVS float64 `json:"source_aggregate_pair_metrics_min_abs_vs"`
}

// Processing is VAST's `processing` section.
type Processing struct {
	// NumWorkers bounds the goroutines that associate, compute pair
	// metrics and fit forced photometry at once; 0 (null in the YAML)
	// means one less than the machine's cores, at least one.
	NumWorkers int `json:"num_workers"`
	// NumWorkersIO bounds the images read at once (headers, catalogues,
	// maps); 0 (null) means as NumWorkers.
	NumWorkersIO int `json:"num_workers_io"`
	// MaxPartitionMB bounds, in MB, the measurement pairs held in memory
	// before they are written out (VAST's partition size for its data
	// frames).
	MaxPartitionMB int `json:"max_partition_mb"`
}

// defaults returns a configuration holding VAST's default settings and no
// inputs.
func defaults() *Config {
	return &Config{
		Run: Run{SuppressAstropyWarnings: true},
		SourceMonitoring: SourceMonitoring{
			Monitor:          false,
			MinSigma:         3.0,
			EdgeBufferScale:  1.2,
			ClusterThreshold: 3.0,
			AllowNaN:         false,
		},
		SourceAssociation: SourceAssociation{
			Method:                 MethodBasic,
			Radius:                 10.0,
			DeRuiterRadius:         5.68,
			DeRuiterBeamwidthLimit: 1.5,
			Parallel:               false,
			EpochDuplicateRadius:   2.5,
		},
		NewSources: NewSources{MinSigma: 5.0},
		Measurements: Measurements{
			SourceFinder:            SourceFinderSelavy,
			FluxFractionalError:     0.0,
			CondonErrors:            true,
			SelavyLocalRMSFillValue: 0.2,
			WriteArrowFiles:         false,
			RAUncertainty:           1,
			DecUncertainty:          1,
		},
		Variability: Variability{PairMetrics: true, SourceAggregatePairMetricsMinAbsVS: 4.3},
		Processing:  Processing{NumWorkers: 0, NumWorkersIO: 5, MaxPartitionMB: 15},
	}
}

// Domain returns the configuration as the domain stores it: the YAML as
// written, the inputs, and the settings digest.
func (c *Config) Domain() domain.RunConfig {
	return domain.RunConfig{
		YAML:           c.text,
		Inputs:         domain.RunConfig{Inputs: c.Inputs}.Clone().Inputs,
		SettingsDigest: c.SettingsDigest(),
	}
}

// SettingsDigest is the hex SHA-256 of a canonical JSON encoding of every
// setting except `inputs` and `run`. Events store it and images may only be
// added while it is unchanged, so the encoding must stay byte-for-byte
// stable: keys are sorted (JSON objects built from maps) and numbers use one
// fixed format. Adding a setting changes every digest; do it only together
// with a rule for configurations stored before.
func (c *Config) SettingsDigest() string {
	sm, sa, ns, m, v := c.SourceMonitoring, c.SourceAssociation, c.NewSources, c.Measurements, c.Variability
	canonical := map[string]map[string]any{
		"source_monitoring": {
			"monitor":           sm.Monitor,
			"min_sigma":         canonFloat(sm.MinSigma),
			"edge_buffer_scale": canonFloat(sm.EdgeBufferScale),
			"cluster_threshold": canonFloat(sm.ClusterThreshold),
			"allow_nan":         sm.AllowNaN,
		},
		"source_association": {
			"method":                   sa.Method,
			"radius":                   canonFloat(sa.Radius),
			"deruiter_radius":          canonFloat(sa.DeRuiterRadius),
			"deruiter_beamwidth_limit": canonFloat(sa.DeRuiterBeamwidthLimit),
			"parallel":                 sa.Parallel,
			"epoch_duplicate_radius":   canonFloat(sa.EpochDuplicateRadius),
		},
		"new_sources": {
			"min_sigma": canonFloat(ns.MinSigma),
		},
		"measurements": {
			"source_finder":               m.SourceFinder,
			"flux_fractional_error":       canonFloat(m.FluxFractionalError),
			"condon_errors":               m.CondonErrors,
			"selavy_local_rms_fill_value": canonFloat(m.SelavyLocalRMSFillValue),
			"write_arrow_files":           m.WriteArrowFiles,
			"ra_uncertainty":              canonFloat(m.RAUncertainty),
			"dec_uncertainty":             canonFloat(m.DecUncertainty),
		},
		"variability": {
			"source_aggregate_pair_metrics_min_abs_vs": canonFloat(v.SourceAggregatePairMetricsMinAbsVS),
		},
	}
	// pair_metrics came later than the rest: written only when it is off,
	// the digests of configurations stored before it stay as they were
	// (they computed pairs, as its default does).
	if !v.PairMetrics {
		canonical["variability"]["pair_metrics"] = false
	}
	// Marshal cannot fail: the values are bools, strings and canonFloats,
	// whose MarshalJSON always emits valid JSON.
	b, _ := json.Marshal(canonical)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// canonFloat fixes the textual form of a number in the settings digest:
// shortest round-trip form, -0 folded into 0, and non-finite values (which
// Parse rejects, but a hand-built Config may hold) as strings so that
// encoding never fails.
type canonFloat float64

func (f canonFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if v == 0 {
		v = 0
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.AppendQuote(nil, strconv.FormatFloat(v, 'g', -1, 64)), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}
