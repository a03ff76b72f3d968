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
	return nil
}
