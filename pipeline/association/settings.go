package association

import (
	"fmt"
	"strings"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/runconfig"
)

// Settings are the run settings association uses.
type Settings struct {
	// Method is source_association.method; only "basic" is implemented.
	Method string
	// RadiusArcsec is source_association.radius.
	RadiusArcsec float64
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
		EpochDuplicateRadiusArcsec: cfg.SourceAssociation.EpochDuplicateRadius,
		NewSourceMinSigma:          cfg.NewSources.MinSigma,
		EdgeBufferScale:            cfg.SourceMonitoring.EdgeBufferScale,
	}, nil
}
