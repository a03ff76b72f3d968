package cli

import (
	"fmt"
	"os"
	"time"

	"github.com/piperun/piperun/bench"
	"github.com/piperun/piperun/pipeline/forced"
)

var benchForcedHelp = help{
	usage: []string{"bench forced [--pixels N] [--sources M] [--pixel-size ARCSEC] [--cluster-threshold T] [--allow-nan] [--seed S] [--dir DIR]"},
	description: `
Writes a synthetic image of N x N pixels of --pixel-size with its
background and noise maps, M sources of known flux injected, and times
forced extraction of all M at their positions (opening the three maps,
reading the cut-outs, fitting, single sources and clusters), as VAST's
source monitoring does for sources missing from an image. Reports the
time, measurements per second, and how many were fitted in clusters.

The image is written to --dir, or to a temporary directory removed
afterwards.`,
	examples: `
piperun bench forced
piperun bench forced --pixels 8192 --sources 40000 --cluster-threshold 0`,
}

func cmdBenchForced(e *env, args []string) error {
	fs := e.flagSet()
	fs.Int("pixels", 4096, "image side `N` in pixels")
	fs.Int("sources", 10000, "number `M` of sources")
	pixel := fs.Float64("pixel-size", 2.5, "pixel size in `ARCSEC`")
	threshold := fs.Float64("cluster-threshold", 3, "fit together sources closer than `T` beams (0: each alone)")
	allowNaN := fs.Bool("allow-nan", false, "fit cut-outs with NaN pixels")
	seed := fs.Uint64("seed", 1, "random `SEED`; equal options give equal images")
	dir := fs.String("dir", "", "`DIR` to write the image to (default: a temporary directory)")
	if _, err := e.parse(fs, benchForcedHelp, args, 0, 0, ""); err != nil {
		return err
	}
	o := bench.ForcedOptions{Seed: *seed, Options: forced.Options{ClusterThreshold: *threshold, AllowNaN: *allowNaN, EdgeBufferScale: 1.2}}
	var err error
	if o.Pixels, err = positiveInt(fs, "pixels"); err != nil {
		return err
	}
	if o.Sources, err = positiveInt(fs, "sources"); err != nil {
		return err
	}
	if !(*pixel > 0) || !(*threshold >= 0) {
		return usagef("--pixel-size must be positive and --cluster-threshold not negative")
	}
	if o.Pixels > 32768 {
		return usagef("--pixels: at most 32768")
	}
	o.FieldRadiusDeg = bench.ForcedFieldRadiusDeg(o.Pixels, *pixel)
	root := *dir
	if root == "" {
		tmp, err := os.MkdirTemp("", "piperun-bench-forced-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		root = tmp
	}
	r, err := bench.Forced(e.ctx, root, o)
	if err != nil {
		return fmt.Errorf("bench forced: %w", err)
	}
	fmt.Fprintf(e.stdout, "image: %d x %d pixels of %g arcsec, %d sources, generated in %s\n",
		o.Pixels, o.Pixels, *pixel, o.Sources, r.Generate.Round(time.Millisecond))
	fmt.Fprintf(e.stdout, "forced extraction: %d measured (%d usable, %d in clusters) in %s (%.0f sources/s)\n",
		r.Measured, r.Usable, r.Clustered, r.Measure.Round(time.Millisecond), float64(o.Sources)/r.Measure.Seconds())
	return nil
}
