package association

import (
	"fmt"
	"strings"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/runconfig"
)

// Settings are the run settings association uses.
type Settings struct {
	// Method is source_association.method: runconfig.MethodBasic,
	// MethodAdvanced or MethodDeRuiter.
	Method string
	// RadiusArcsec is source_association.radius, the largest separation of
	// a match in basic and advanced association.
	RadiusArcsec float64
	// DeRuiterRadius is source_association.deruiter_radius, the largest
	// (unitless) de Ruiter radius of a match in de Ruiter association.
	DeRuiterRadius float64
	// DeRuiterBeamwidthLimit is source_association.deruiter_beamwidth_limit:
	// in de Ruiter association a match is also at most this many times half
	// the largest beam major axis of the step's images away.
	DeRuiterBeamwidthLimit float64
	// EpochDuplicateRadiusArcsec is source_association.epoch_duplicate_radius:
	// in epoch mode, measurements of one epoch's images closer than this are
	// duplicates.
	EpochDuplicateRadiusArcsec float64
	// NewSourceMinSigma is new_sources.min_sigma.
	NewSourceMinSigma float64
	// EdgeBufferScale is source_monitoring.edge_buffer_scale, which widens
	// the image border where a new source's rms is not measured.
	EdgeBufferScale float64
	// PairMetrics is variability.pair_metrics: compute every pair of each
	// source's measurements (the measurement_pairs product) and the
	// sources' aggregate pair metrics.
	PairMetrics bool
	// PairMinAbsVs is variability.source_aggregate_pair_metrics_min_abs_vs,
	// the |Vs| a pair needs to enter its source's aggregates.
	PairMinAbsVs float64
	// Parallel is source_association.parallel: associate the images of
	// sky regions that share no image separately, concurrently.
	Parallel bool
	// WriteArrow is measurements.write_arrow_files: also write
	// measurements.arrow and measurement_pairs.arrow.
	WriteArrow bool
	// Workers is processing.num_workers (see pipeline.Workers): at most
	// this many goroutines compute pair metrics or associate regions.
	Workers int
	// MaxPartitionMB is processing.max_partition_mb: measurement pairs are
	// written out in batches of at most about this many MB.
	MaxPartitionMB int
}

// DefaultSettings returns VAST's defaults.
func DefaultSettings() Settings {
	return Settings{
		Method:                     runconfig.MethodBasic,
		RadiusArcsec:               10,
		DeRuiterRadius:             5.68,
		DeRuiterBeamwidthLimit:     1.5,
		EpochDuplicateRadiusArcsec: 2.5,
		NewSourceMinSigma:          5,
		EdgeBufferScale:            1.2,
		PairMetrics:                true,
		PairMinAbsVs:               4.3,
		MaxPartitionMB:             15,
	}
}

// SettingsFromConfig reads the association settings of a run
// configuration; an empty configuration gives the defaults.
func SettingsFromConfig(c domain.RunConfig) (Settings, error) {
	if strings.TrimSpace(c.YAML) == "" {
		return DefaultSettings(), nil
	}
	cfg, err := runconfig.Parse([]byte(c.YAML))
	if err != nil {
		return Settings{}, fmt.Errorf("read association settings: %w", err)
	}
	return Settings{
		Method:                     cfg.SourceAssociation.Method,
		RadiusArcsec:               cfg.SourceAssociation.Radius,
		DeRuiterRadius:             cfg.SourceAssociation.DeRuiterRadius,
		DeRuiterBeamwidthLimit:     cfg.SourceAssociation.DeRuiterBeamwidthLimit,
		EpochDuplicateRadiusArcsec: cfg.SourceAssociation.EpochDuplicateRadius,
		NewSourceMinSigma:          cfg.NewSources.MinSigma,
		EdgeBufferScale:            cfg.SourceMonitoring.EdgeBufferScale,
		PairMetrics:                cfg.Variability.PairMetrics,
		PairMinAbsVs:               cfg.Variability.SourceAggregatePairMetricsMinAbsVS,
		Parallel:                   cfg.SourceAssociation.Parallel,
		WriteArrow:                 cfg.Measurements.WriteArrowFiles,
		Workers:                    cfg.Processing.NumWorkers,
		MaxPartitionMB:             cfg.Processing.MaxPartitionMB,
	}, nil
}

// check rejects settings association cannot run with.
func (s Settings) check() error {
	switch s.Method {
	case runconfig.MethodBasic, runconfig.MethodAdvanced:
		if !(s.RadiusArcsec >= 0) {
			return fmt.Errorf("%w: radius %v arcsec", ErrInvalidSettings, s.RadiusArcsec)
		}
	case runconfig.MethodDeRuiter:
		if !(s.DeRuiterRadius >= 0) || !(s.DeRuiterBeamwidthLimit >= 0) {
			return fmt.Errorf("%w: de Ruiter radius %v, beamwidth limit %v", ErrInvalidSettings, s.DeRuiterRadius, s.DeRuiterBeamwidthLimit)
		}
	default:
		return fmt.Errorf("%w: %q (want %s, %s or %s)", ErrUnsupportedMethod, s.Method, runconfig.MethodBasic, runconfig.MethodAdvanced, runconfig.MethodDeRuiter)
	}
	if s.PairMetrics && !(s.PairMinAbsVs >= 0) {
		return fmt.Errorf("%w: pair metrics' minimum |Vs| %v", ErrInvalidSettings, s.PairMinAbsVs)
	}
	if s.Workers < 0 || s.MaxPartitionMB < 0 {
		return fmt.Errorf("%w: %d workers, partitions of %d MB", ErrInvalidSettings, s.Workers, s.MaxPartitionMB)
	}
	return nil
}
