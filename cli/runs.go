package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/piperun/piperun/client"
	"github.com/piperun/piperun/runconfig"
)

var initHelp = help{
	usage: []string{
		"initpiperun NAME --config FILE [--description TEXT]",
		"initpiperun --template [NAME]",
	},
	description: `
Creates the run NAME on the server with the configuration in FILE ('-' reads
standard input). The server checks the configuration at once, including
that every input file exists under its images root; the run starts in
status Initialised. Process it with 'piperun runpipeline NAME'.

With --template, prints instead a configuration template holding the VAST
pipeline's defaults, to fill in (the inputs) and pass to --config.

VAST's initpiperun creates a run folder holding a template config.yaml that
is edited in place before runpipeline reads it. Here the run lives on the
server: write the configuration first (start from --template), and
initpiperun uploads it; change it later with 'piperun config set'.

Run names have at most 64 characters and none of [@!#$%^&*()<>?/\|}{~:] or
spaces, as in VAST.`,
	env: clientEnv,
	examples: `
piperun initpiperun --template my-run > my-run.yaml
$EDITOR my-run.yaml
piperun initpiperun my-run --config my-run.yaml --description "epochs 1-4 of the test field"`,
}

func cmdInit(e *env, args []string) error {
	fs := e.flagSet()
	clientFlags(fs)
	configFile := fs.String("config", "", "`FILE` holding the run's configuration (YAML; - for standard input)")
	description := fs.String("description", "", "short description of the run (at most 240 characters)")
	template := fs.Bool("template", false, "print a configuration template instead of creating a run")
	pos, err := e.parse(fs, initHelp, args, 0, 1, "")
	if err != nil {
		return err
	}
	if *template {
		if setFlags(fs)["config"] {
			return usagef("--template and --config do not go together")
		}
		name := "my-run"
		if len(pos) == 1 {
			name = pos[0]
		}
		fmt.Fprint(e.stdout, runconfig.Template(name))
		return nil
	}
	if len(pos) == 0 {
		return usagef("missing the run NAME")
	}
	if *configFile == "" {
		return usagef("missing --config FILE (print a template to start from with 'piperun initpiperun --template %s')", pos[0])
	}
	text, err := e.readFile(*configFile)
	if err != nil {
		return err
	}
	r, err := e.client(fs)
	if err != nil {
		return err
	}
	d, err := r.CreateRun(e.ctx, pos[0], *description, text)
	if err != nil {
		return r.explain(err)
	}
	fmt.Fprintf(e.stdout, "Created run %s (status %s). Process it with: piperun runpipeline %s\n", d.Name, d.Status, d.Name)
	return nil
}

// readFile reads a file named on the command line, '-' being stdin.
func (e *env) readFile(name string) (string, error) {
	var b []byte
	var err error
	if name == "-" {
		b, err = io.ReadAll(e.stdin)
	} else {
		b, err = os.ReadFile(name)
	}
	if err != nil {
		return "", fmt.Errorf("read configuration: %w", err)
	}
	return string(b), nil
}

var runPipelineHelp = help{
	usage: []string{"runpipeline NAME [--debug] [--full-rerun] [--no-wait]"},
	description: `
Requests processing of the run NAME and, unless --no-wait, follows the job:
its log lines are printed as they are written, and the command exits 0 when
the job completed, 1 with the reason when it failed.

A run that never completed is processed in full. A completed run whose
configuration gained images (and changed nothing else) is processed in add
mode: only the new images are processed and associated with the existing
sources, and a backup of the run as it was is kept, which
'piperun restorepiperun' can bring back. --full-rerun processes everything
again instead (and drops any backup), as VAST's --full-rerun does.

Interrupting the command (Ctrl-C) stops following, not the job.`,
	env: clientEnv,
	examples: `
piperun runpipeline my-run
piperun config set my-run my-run-with-epoch05.yaml && piperun runpipeline my-run
piperun runpipeline my-run --full-rerun --debug --no-wait`,
}

func cmdRunPipeline(e *env, args []string) error {
	fs := e.flagSet()
	clientFlags(fs)
	debug := fs.Bool("debug", false, "write debug lines to the run log")
	full := fs.Bool("full-rerun", false, "process every image again, even if images were only added")
	noWait := fs.Bool("no-wait", false, "return once the job is queued instead of following it")
	pos, err := e.parse(fs, runPipelineHelp, args, 1, 1, "the run NAME")
	if err != nil {
		return err
	}
	name := pos[0]
	r, err := e.client(fs)
	if err != nil {
		return err
	}
	job, err := r.Process(e.ctx, name, *debug, *full)
	if err != nil {
		return r.explain(err)
	}
	fmt.Fprintf(e.stdout, "Processing of run %s queued (%s mode, job %s, log %s).\n", name, job.Mode, job.JobID, job.Log)
	if *noWait {
		fmt.Fprintf(e.stdout, "Follow it with: piperun status %s\n", name)
		return nil
	}
	o, err := e.follow(r, name, job.Log, func() (client.Outcome, error) {
		return r.ProcessingOutcome(e.ctx, name, job.JobID)
	})
	if err != nil {
		if e.ctx.Err() != nil {
			return fmt.Errorf("stopped following; the job goes on on the server: see 'piperun status %s'", name)
		}
		return r.explain(err)
	}
	if !o.OK {
		return fmt.Errorf("processing of run %s failed: %s", name, o.Reason)
	}
	d, err := r.GetRun(e.ctx, name)
	if err != nil {
		return r.explain(err)
	}
	fmt.Fprintf(e.stdout, "Run %s %s: %d images, %d sources, %d measurements.\n", name, strings.ToLower(string(d.Status)), d.NImages, d.NSources, d.NSelavyMeasurements+d.NForcedMeasurements)
	return nil
}

// follow prints the new lines of a run's log until check reports that the
// job or restore writing it ended, then the last lines.
func (e *env) follow(r *remote, run, log string, check func() (client.Outcome, error)) (client.Outcome, error) {
	next := int64(1)
	printNew := func() error {
		lines, err := r.Log(e.ctx, run, log, next)
		if client.IsStatus(err, http.StatusNotFound) {
			return nil // not written yet
		}
		if err != nil {
			return err
		}
		for _, l := range lines {
			fmt.Fprintln(e.stdout, l)
		}
		next += int64(len(lines))
		return nil
	}
	for {
		if err := printNew(); err != nil {
			return client.Outcome{}, err
		}
		o, err := check()
		if err != nil {
			return o, err
		}
		if o.Done {
			// The log is read from the read models, which may not show the
			// ending event (and the lines written with it) yet.
			if err := r.WaitVersion(e.ctx, run, o.Version, pollInterval); err != nil {
				return o, err
			}
			return o, printNew()
		}
		if err := e.sleep(pollInterval); err != nil {
			return o, err
		}
	}
}

var restoreHelp = help{
	usage: []string{
		"restorepiperun RUN [--no-confirm] [--debug] [--no-wait]",
		"restore RUN [--no-confirm] [--debug] [--no-wait]",
	},
	description: `
Restores the run RUN to its version before the last addition of images, as
VAST's restorepiperun does: the configuration and products the run had
before the images were added come back, and the backup is used up (a second
restore needs another addition first).

The command shows the configuration the run will go back to and asks
"Restore run RUN to this configuration? (y/n)" on standard input; anything
but y or yes, or the end of the input, aborts (exit 1). --no-confirm skips
the question. It then follows the restore and prints its log, and exits 0
when the run was restored, 1 with the reason when it was not (a failed
restore leaves the run as it was).

Only the run's creator or an administrator may restore it, and only when it
is Completed or Error and has a backup.`,
	env: clientEnv,
	examples: `
piperun restorepiperun my-run
piperun restore my-run --no-confirm --debug`,
}

func cmdRestore(e *env, args []string) error {
	fs := e.flagSet()
	clientFlags(fs)
	noConfirm := fs.Bool("no-confirm", false, "restore without asking for confirmation")
	debug := fs.Bool("debug", false, "write debug lines to the restore log")
	noWait := fs.Bool("no-wait", false, "return once the restore is requested instead of following it")
	pos, err := e.parse(fs, restoreHelp, args, 1, 1, "the RUN to restore")
	if err != nil {
		return err
	}
	name := pos[0]
	r, err := e.client(fs)
	if err != nil {
		return err
	}
	p, err := r.RestorePreview(e.ctx, name)
	if err != nil {
		return r.explain(err)
	}
	if !p.Available {
		return fmt.Errorf("run %s cannot be restored: %s", name, p.Reason)
	}
	if !p.Allowed {
		return fmt.Errorf("not allowed: only the creator of run %s or an administrator may restore it", name)
	}
	fmt.Fprintf(e.stdout, "Run %s will be restored to its version before the last addition of images (backup taken at version %d)", name, p.BackupVersion)
	if p.Figures != nil {
		fmt.Fprintf(e.stdout, ": %d images, %d sources", p.Figures.NImages, p.Figures.NSources)
	}
	fmt.Fprintf(e.stdout, ".\nConfiguration it will have:\n\n%s\n", indent(p.Config, "    "))
	if !*noConfirm && !e.confirm(fmt.Sprintf("Restore run %s to this configuration?", name)) {
		return fmt.Errorf("aborted: run %s was not restored", name)
	}
	req, err := r.Restore(e.ctx, name, *debug)
	if err != nil {
		return r.explain(err)
	}
	fmt.Fprintf(e.stdout, "Restore of run %s requested (request %s, log %s).\n", name, req.RequestID, req.Log)
	if *noWait {
		fmt.Fprintf(e.stdout, "Follow it with: piperun history %s\n", name)
		return nil
	}
	o, err := e.follow(r, name, req.Log, func() (client.Outcome, error) {
		return r.RestoreOutcome(e.ctx, name, req.RequestID)
	})
	if err != nil {
		if e.ctx.Err() != nil {
			return fmt.Errorf("stopped following; the restore goes on on the server: see 'piperun history %s'", name)
		}
		return r.explain(err)
	}
	if !o.OK {
		return fmt.Errorf("restore of run %s failed: %s", name, o.Reason)
	}
	fmt.Fprintf(e.stdout, "Run %s restored.\n", name)
	return nil
}

func indent(text, prefix string) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "\n")
}

var cancelHelp = help{
	usage: []string{"cancel RUN [--no-confirm]"},
	description: `
Cancels the queued or running job of the run RUN, after asking
"Cancel the job of run RUN? (y/n)" on standard input (anything but y or yes
aborts, exit 1; --no-confirm skips the question). The job ends at once: the run
goes to Error with "cancelled by USER" in its log, and the worker running
the job stops it; whatever the job would still have recorded is refused.
Process the run again with 'piperun runpipeline RUN'.

Use it for a job that never ends, or one that keeps stopping the server.
Only the run's creator or an administrator may cancel its job; a run with
no job queued or running is refused (exit 1).`,
	env: clientEnv,
	examples: `
piperun cancel my-run
piperun cancel my-run --no-confirm`,
}

func cmdCancel(e *env, args []string) error {
	fs := e.flagSet()
	clientFlags(fs)
	noConfirm := fs.Bool("no-confirm", false, "cancel without asking for confirmation")
	pos, err := e.parse(fs, cancelHelp, args, 1, 1, "the RUN whose job to cancel")
	if err != nil {
		return err
	}
	name := pos[0]
	r, err := e.client(fs)
	if err != nil {
		return err
	}
	if !*noConfirm && !e.confirm(fmt.Sprintf("Cancel the job of run %s?", name)) {
		return fmt.Errorf("aborted: the job of run %s was not cancelled", name)
	}
	res, err := r.Cancel(e.ctx, name)
	if err != nil {
		return r.explain(err)
	}
	fmt.Fprintf(e.stdout, "Job %s of run %s cancelled; the run is %s.\n", res.JobID, name, res.Status)
	return nil
}

var clearHelp = help{
	usage: []string{"clearpiperun RUN... [--no-confirm] [--no-wait]"},
	description: `
Deletes the runs named, with their products, logs and backups, after asking
"Delete run RUN and all its products? (y/n)" on standard input (anything
but y or yes aborts, exit 1; --no-confirm skips the question). It waits
until the server has removed each run, unless --no-wait.

A run that is queued or running has its job cancelled first (see 'piperun
cancel'); a run cannot be deleted while it is restoring. Its event
history is kept, and a new run may take the name. Unlike VAST's
clearpiperun there is no --keep-parquet: products are content-addressed and
shared, and removed once no run refers to them.`,
	env: clientEnv,
	examples: `
piperun clearpiperun my-run
piperun clearpiperun old-run-1 old-run-2 --no-confirm`,
}

func cmdClear(e *env, args []string) error {
	fs := e.flagSet()
	clientFlags(fs)
	noConfirm := fs.Bool("no-confirm", false, "delete without asking for confirmation")
	noWait := fs.Bool("no-wait", false, "return once the deletion is requested")
	pos, err := e.parse(fs, clearHelp, args, 1, -1, "the RUN to delete")
	if err != nil {
		return err
	}
	r, err := e.client(fs)
	if err != nil {
		return err
	}
	for _, name := range pos {
		if !*noConfirm && !e.confirm(fmt.Sprintf("Delete run %s and all its products?", name)) {
			return fmt.Errorf("aborted: run %s was not deleted", name)
		}
		if _, err := r.Delete(e.ctx, name); err != nil {
			return r.explain(err)
		}
		if *noWait {
			fmt.Fprintf(e.stdout, "Deletion of run %s requested.\n", name)
			continue
		}
		for {
			_, err := r.GetRun(e.ctx, name)
			if client.IsStatus(err, http.StatusNotFound) {
				break
			}
			if err != nil {
				return r.explain(err)
			}
			if err := e.sleep(pollInterval); err != nil {
				return fmt.Errorf("stopped waiting; the deletion of run %s goes on on the server", name)
			}
		}
		fmt.Fprintf(e.stdout, "Run %s deleted.\n", name)
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
