package runconfig

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/piperun/piperun/domain"
	"gopkg.in/yaml.v3"
)

// Template returns a commented configuration holding VAST's defaults and no
// inputs, like VAST's `initpiperun` writes. Parse accepts it once the image,
// selavy and noise lists are filled in.
func Template(runName string) string {
	return render(defaults(), runName)
}

// Render returns a commented configuration with VAST's defaults and the
// given inputs, which Parse accepts when the inputs are consistent. With
// in.Epochs set it writes VAST's epoch mode; images of one epoch are
// grouped under it, at the place of the epoch's first image.
func Render(in domain.Inputs, runName string) string {
	c := defaults()
	c.Inputs = in
	return render(c, runName)
}

// render writes c as YAML. Scalars go through quote, so any path or name
// survives a round trip through Parse.
func render(c *Config, runName string) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	sm, sa, ns, m, v := c.SourceMonitoring, c.SourceAssociation, c.NewSources, c.Measurements, c.Variability

	w(`# Configuration of a pipeline run, in the format of the ASKAP VAST pipeline.
# Review every setting before processing: some defaults will not suit your
# images. Omitted settings take the defaults shown here.

run:
  # Name of the run (informational).
  path: %s
  # Log warnings about how image headers were read (astropy's warnings in
  # VAST) only as debug lines.
  suppress_astropy_warnings: %t

inputs:
  # Paths are relative to the service's images root. The lists pair up by
  # position: selavy[0], noise[0] and background[0] belong to image[0].
  # For VAST's epoch mode, give each list as a mapping of epoch name to
  # paths instead; images of one epoch are processed together.
`, quote(runName), c.Run.SuppressAstropyWarnings)
	writeInputs(&b, c.Inputs)

	w(`
source_monitoring:
  # Forced extraction of sources at positions where an image did not detect
  # them. Needs inputs.background.
  monitor: %t
  # Minimum significance (flux over local rms) a source must reach in the
  # image where it was first seen to be monitored in the others.
  min_sigma: %s
  # Scales the margin, from the image edge, inside which forced extraction
  # is not attempted.
  edge_buffer_scale: %s
  # Clustering threshold of the forced fits; leave it unless you know why.
  cluster_threshold: %s
  # Attempt forced fits even where the rms or background map holds NaNs.
  allow_nan: %t

source_association:
  # basic, advanced or deruiter.
  method: %s
  # Largest separation (arcsec) at which basic and advanced association
  # match measurements.
  radius: %s
  # de Ruiter association only: largest de Ruiter radius (unitless) and
  # beamwidth limit: matches are also at most this many times half the
  # largest beam major axis of the images being associated apart.
  deruiter_radius: %s
  deruiter_beamwidth_limit: %s
  # Associate groups of overlapping sky regions apart, in parallel; worth
  # it only for many images over several separate patches of sky. Sources
  # are then numbered group by group, as VAST numbers them.
  parallel: %t
  # In epoch mode, measurements of one epoch closer than this (arcsec) are
  # taken as duplicates from overlapping images.
  epoch_duplicate_radius: %s

new_sources:
  # Minimum significance a source must have, against the rms of the images
  # where it was not seen, to be flagged as new.
  min_sigma: %s

measurements:
  # Source finder that made the catalogues; only selavy is supported.
  source_finder: %s
  # Fractional flux error added in quadrature to the fitted errors.
  flux_fractional_error: %s
  # Replace selavy's errors with Condon (1997) errors.
  condon_errors: %t
  # Local rms (mJy/beam) used where selavy reports 0.
  selavy_local_rms_fill_value: %s
  # Also write measurements.arrow and measurement_pairs.arrow.
  write_arrow_files: %t
  # Astrometric uncertainty (arcsec) of the images, added in quadrature to
  # the fitted positional errors.
  ra_uncertainty: %s
  dec_uncertainty: %s

variability:
  # Compute the two-epoch metrics (Vs and m) of every pair of a source's
  # measurements: the measurement_pairs product and the sources' aggregates.
  pair_metrics: %t
  # Only measurement pairs whose |Vs| reaches this enter a source's
  # aggregate pair metrics.
  source_aggregate_pair_metrics_min_abs_vs: %s

processing:
  # Goroutines that associate, compute pair metrics and fit forced
  # photometry at once (null: one less than the machine's cores).
  num_workers: %s
  # Images read at once (null: as num_workers).
  num_workers_io: %s
  # Largest batch of measurement pairs (MB) held in memory before it is
  # written out.
  max_partition_mb: %d
`,
		sm.Monitor, num(sm.MinSigma), num(sm.EdgeBufferScale), num(sm.ClusterThreshold), sm.AllowNaN,
		quote(sa.Method), num(sa.Radius), num(sa.DeRuiterRadius), num(sa.DeRuiterBeamwidthLimit), sa.Parallel, num(sa.EpochDuplicateRadius),
		num(ns.MinSigma),
		quote(m.SourceFinder), num(m.FluxFractionalError), m.CondonErrors, num(m.SelavyLocalRMSFillValue), m.WriteArrowFiles, num(m.RAUncertainty), num(m.DecUncertainty),
		v.PairMetrics, num(v.SourceAggregatePairMetricsMinAbsVS),
		workers(c.Processing.NumWorkers), workers(c.Processing.NumWorkersIO), c.Processing.MaxPartitionMB)
	return b.String()
}

func writeInputs(b *strings.Builder, in domain.Inputs) {
	lists := []struct {
		key, example string
		paths        []string
	}{
		{keyImage, "data/epoch01.fits", in.Images},
		{keySelavy, "data/epoch01.selavy.components.txt", in.Selavy},
		{keyNoise, "data/epoch01.noiseMap.fits", in.Noise},
		{keyBackground, "data/epoch01.meanMap.fits", in.Background},
	}
	epochMode := in.Epochs != nil && len(in.Epochs) == len(in.Images)
	for _, l := range lists {
		switch {
		case len(l.paths) == 0 && l.key == keyBackground:
			fmt.Fprintf(b, "  # Required only when source_monitoring.monitor is true.\n  # %s:\n  # - %s\n", l.key, l.example)
		case len(l.paths) == 0:
			fmt.Fprintf(b, "  %s:\n  # - %s\n", l.key, l.example)
		case !epochMode:
			fmt.Fprintf(b, "  %s:\n", l.key)
			for _, p := range l.paths {
				fmt.Fprintf(b, "  - %s\n", quote(p))
			}
		default:
			fmt.Fprintf(b, "  %s:\n", l.key)
			for _, g := range groupByEpoch(in.Epochs, len(l.paths)) {
				fmt.Fprintf(b, "    %s:\n", quote(g.epoch))
				for _, i := range g.index {
					fmt.Fprintf(b, "    - %s\n", quote(l.paths[i]))
				}
			}
		}
	}
}

type epochGroup struct {
	epoch string
	index []int
}

// groupByEpoch groups positions 0..n-1 by epoch, epochs in order of first
// appearance.
func groupByEpoch(epochs []string, n int) []epochGroup {
	var groups []epochGroup
	at := make(map[string]int)
	for i := 0; i < n && i < len(epochs); i++ {
		g, ok := at[epochs[i]]
		if !ok {
			g = len(groups)
			at[epochs[i]] = g
			groups = append(groups, epochGroup{epoch: epochs[i]})
		}
		groups[g].index = append(groups[g].index, i)
	}
	return groups
}

// quote writes s as a YAML scalar that reads back as the string s: plain
// when that is safe, quoted otherwise (yaml.v3 decides), and double-quoted
// with escapes when the encoder would need several lines.
func quote(s string) string {
	out, err := yaml.Marshal(&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s})
	text := strings.TrimSuffix(string(out), "\n")
	if err != nil || text == "" || strings.ContainsAny(text, "\n\r") {
		return strconv.Quote(s)
	}
	return text
}

// workers writes a worker count, 0 being null (the default).
func workers(n int) string {
	if n <= 0 {
		return "null"
	}
	return strconv.Itoa(n)
}

// num writes a float so that it reads back exactly, with a decimal point
// for whole numbers as VAST's template has them.
func num(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eEnN") {
		s += ".0"
	}
	return s
}
