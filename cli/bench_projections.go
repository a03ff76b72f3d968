package cli

import (
	"github.com/piperun/piperun/bench"
)

var benchProjectionsHelp = help{
	usage: []string{"bench projections [--events N] [--writers N] [--dir DIR] [--cpuprofile FILE]"},
	description: `
Writes an event log of --events events into an embedded event store, as
--writers concurrent writers driving runs through their lives (created,
processed with the log events a job writes, then images added and the run
restored, three times), then drops the read models and rebuilds them from
the log as 'piperun projections rebuild' does, and reports events per
second.

With --dir, the event store and read models are kept there, and an event
store already in --dir is reused as it is (the log is not written again).
--cpuprofile writes a CPU profile of the rebuild for 'go tool pprof'.`,
	examples: `
piperun bench projections
piperun bench projections --events 100000 --cpuprofile rebuild.prof`,
}

func cmdBenchProjections(e *env, args []string) error {
	fs := e.flagSet()
	fs.Int("events", 1_000_000, "number `N` of events in the log")
	fs.Int("writers", 64, "number `N` of concurrent writers of the log")
	dir := fs.String("dir", "", "`DIR` for the event store and read models (default: a temporary directory)")
	profile := fs.String("cpuprofile", "", "write a CPU profile of the rebuild to `FILE`")
	if _, err := e.parse(fs, benchProjectionsHelp, args, 0, 0, ""); err != nil {
		return err
	}
	opts := bench.ProjectionsOptions{Dir: *dir, CPUProfile: *profile}
	var err error
	if opts.History.Events, err = positiveInt(fs, "events"); err != nil {
		return err
	}
	if opts.History.Writers, err = positiveInt(fs, "writers"); err != nil {
		return err
	}
	_, err = bench.Projections(e.ctx, opts, e.stdout)
	return err
}
