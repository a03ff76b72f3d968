package cli

import (
	"github.com/piperun/piperun/bench"
)

var benchRestoreHelp = help{
	usage: []string{"bench restore [--sizes 1e3,1e5,1e7] [--restores N] [--images N] [--dir DIR]"},
	description: `
Times restores from request to Completed for runs of each of --sizes
measurements. For each size it writes measurements products (Parquet files
of that many synthetic rows, shared by --images images, plus one image more
for the addition) through the artifact store, and seeds --restores runs
that took them as their backup before an image was added. It then starts a
server in this process and restores the runs one at a time over HTTP,
polling each until it reads Completed.

It reports, per size, the backup's size on disk, the restore request's time
to its 202, the time to Completed (p50 and max), and how long hashing the
backup's files in full takes: what every restore would cost if the restore
worker re-read the backup. Writing 10^7 measurements takes a minute or two
and about 1.5 GiB in --dir (default: a temporary directory).`,
	examples: `
piperun bench restore
piperun bench restore --sizes 1000,1e6 --restores 10`,
}

func cmdBenchRestore(e *env, args []string) error {
	fs := e.flagSet()
	sizes := fs.String("sizes", "1e3,1e5,1e7", "comma-separated run sizes, in `MEASUREMENTS`")
	fs.Int("restores", 5, "number `N` of restores timed per size")
	fs.Int("images", 4, "number `N` of images of a run before the addition")
	dir := fs.String("dir", "", "data `DIR`ectory (default: a temporary directory)")
	if _, err := e.parse(fs, benchRestoreHelp, args, 0, 0, ""); err != nil {
		return err
	}
	opts := bench.RestoreOptions{Dir: *dir}
	var err error
	if opts.Sizes, err = parseCounts(*sizes); err != nil {
		return usagef("--sizes: %v", err)
	}
	if opts.Restores, err = positiveInt(fs, "restores"); err != nil {
		return err
	}
	if opts.Images, err = positiveInt(fs, "images"); err != nil {
		return err
	}
	_, err = bench.Restore(e.ctx, opts, e.stdout)
	return err
}
