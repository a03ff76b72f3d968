// The maintenance commands of a data directory: rebuilding the read models and sweeping artifacts.

package cli

import (
	"github.com/piperun/piperun/wiring"
)

func cmdProjections(e *env, args []string) error {
	return e.dispatch([]subcommand{
		{name: "rebuild", summary: "drop the read models and rebuild them from the event log", run: cmdProjectionsRebuild},
	}, args)
}

var rebuildHelp = help{
	usage: []string{"projections rebuild [--data-dir DIR]"},
	description: `
Drops the read models of a data directory (run list, run details, logs,
users) and rebuilds them from the event log, which is the only source of
truth. Use it after a change to how events are projected, or if the read
model file was damaged. Stop the service on the data directory first.`,
	env: []string{dataDirEnv, esdbEnv},
	examples: `
piperun projections rebuild --data-dir /srv/piperun`,
}

func cmdProjectionsRebuild(e *env, args []string) error {
	fs := e.flagSet()
	dataDirFlag(fs)
	esdbFlag(fs)
	if _, err := e.parse(fs, rebuildHelp, args, 0, 0, ""); err != nil {
		return err
	}
	return wiring.RebuildProjections(e.ctx, e.storage(fs), e.stdout)
}

func cmdArtifacts(e *env, args []string) error {
	return e.dispatch([]subcommand{
		{name: "sweep", summary: "delete stored products no run uses any more", run: cmdArtifactsSweep},
	}, args)
}

var sweepHelp = help{
	usage: []string{"artifacts sweep [--data-dir DIR] [--artifacts-url URL] [--grace D]"},
	description: `
Deletes the stored artifacts (products, backups) of a data directory that no
run uses any more, in its current products or its backup, and that are
older than --grace; and the leftovers of writes a crash cut short. A restore
or a deletion removes what it abandons, but not while a processing job is
pending anywhere, and a process that dies between writing products and
recording them leaves files that no run names: this finds them. A server
with workers sweeps on its own every 6 hours.

It deletes nothing while a processing job is pending (its products are not
recorded yet). It is safe while a server runs on the data directory.
Give it the servers' --artifacts-url when their products are in a bucket.`,
	env: []string{dataDirEnv, esdbEnv, artifactsEnv},
	examples: `
piperun artifacts sweep --data-dir /srv/piperun
piperun artifacts sweep --grace 1h`,
}

func cmdArtifactsSweep(e *env, args []string) error {
	fs := e.flagSet()
	dataDirFlag(fs)
	esdbFlag(fs)
	artifactsFlag(fs)
	fs.String("grace", wiring.DefaultSweepGrace.String(), "leave files younger than `D`, e.g. 24h or 30m")
	if _, err := e.parse(fs, sweepHelp, args, 0, 0, ""); err != nil {
		return err
	}
	grace, err := positiveDuration(fs, "grace")
	if err != nil {
		return err
	}
	_, err = wiring.SweepArtifacts(e.ctx, e.storage(fs), grace, e.stdout)
	return err
}
