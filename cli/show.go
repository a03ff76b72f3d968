package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/piperun/piperun/projections"
)

// timeFormat is how times are shown: UTC, to the second.
const timeFormat = "2006-01-02 15:04:05Z"

func showTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(timeFormat)
}

// getRun fetches a run now, or at a version of its history if version > 0.
func (e *env) getRun(r *remote, name string, version int64) (projections.RunDetail, error) {
	if version < 0 {
		return projections.RunDetail{}, usagef("--version must be a positive version number")
	}
	var d projections.RunDetail
	var err error
	if version > 0 {
		d, err = r.GetRunAt(e.ctx, name, version)
	} else {
		d, err = r.GetRun(e.ctx, name)
	}
	if err != nil {
		return d, r.explain(err)
	}
	return d, nil
}

var statusHelp = help{
	usage: []string{"status RUN [--json] [--version N]"},
	description: `
Shows the run RUN: its status, owner, figures (images, sources,
measurements), whether it can be restored, its images and its logs. With
--version, shows the run as it was at that version of its history (see
'piperun history RUN'). --json prints the API's run resource instead.`,
	env: clientEnv,
	examples: `
piperun status my-run
piperun status my-run --version 5 --json`,
}

func cmdStatus(e *env, args []string) error {
	fs := e.flagSet()
	clientFlags(fs)
	asJSON := fs.Bool("json", false, "print the run as JSON")
	version := fs.Int64("version", 0, "show the run as it was at this version of its history")
	pos, err := e.parse(fs, statusHelp, args, 1, 1, "the RUN")
	if err != nil {
		return err
	}
	r, err := e.client(fs)
	if err != nil {
		return err
	}
	d, err := e.getRun(r, pos[0], *version)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.stdout, d)
	}
	w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(w, "%s:\t%v\n", k, v) }
	row("Run", safe(d.Name))
	if d.Description != "" {
		row("Description", safe(d.Description))
	}
	row("Owner", safe(d.Owner))
	status := string(d.Status)
	if d.Mode != "" {
		status += " (" + string(d.Mode) + " mode)"
	}
	row("Status", status)
	row("Version", d.Version)
	row("Images", d.NImages)
	row("Sources", d.NSources)
	row("New sources", d.NNewSources)
	row("Measurements", fmt.Sprintf("%d selavy, %d forced", d.NSelavyMeasurements, d.NForcedMeasurements))
	row("Measurement pairs", fmt.Sprint(d.NMeasurementPairs))
	row("Products", len(d.Products))
	restorable := "no"
	if d.RestoreAvailable {
		restorable = "yes (piperun restorepiperun " + safe(d.Name) + ")"
	}
	row("Restorable", restorable)
	row("Created", showTime(d.Created))
	row("Updated", showTime(d.Updated))
	if err := w.Flush(); err != nil {
		return err
	}
	if len(d.Images) > 0 {
		fmt.Fprintln(e.stdout, "\nImages:")
		w = tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "  NAME\tEPOCH\tDATE\tFREQ (MHz)\tMEASUREMENTS\tPATH")
		for _, im := range d.Images {
			epoch := im.Epoch
			if epoch == "" {
				epoch = "-"
			}
			fmt.Fprintf(w, "  %s\t%s\t%s\t%.1f\t%d\t%s\n", safe(im.Name), safe(epoch), showTime(im.DateTime), im.FrequencyMHz, im.NMeasurements, safe(im.Path))
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	if len(d.Logs) > 0 {
		fmt.Fprintln(e.stdout, "\nLogs (newest first; print one with 'piperun logs RUN LOG'):")
		w = tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		for _, l := range d.Logs {
			fmt.Fprintf(w, "  %s\t%s\t%s\n", safe(l.Name), l.Kind, showTime(l.Created))
		}
		return w.Flush()
	}
	return nil
}

var listHelp = help{
	usage: []string{"list [--json]"},
	description: `
Lists every run, most recently changed first: name, status, owner, number
of images and sources, version and time of the last change, description.`,
	env: clientEnv,
	examples: `
piperun list
piperun list --json | jq -r '.[].name'`,
}

func cmdList(e *env, args []string) error {
	fs := e.flagSet()
	clientFlags(fs)
	asJSON := fs.Bool("json", false, "print the runs as a JSON array")
	if _, err := e.parse(fs, listHelp, args, 0, 0, ""); err != nil {
		return err
	}
	r, err := e.client(fs)
	if err != nil {
		return err
	}
	runs, err := r.ListRuns(e.ctx)
	if err != nil {
		return r.explain(err)
	}
	if *asJSON {
		if runs == nil {
			runs = []projections.RunSummary{}
		}
		return writeJSON(e.stdout, runs)
	}
	if len(runs) == 0 {
		fmt.Fprintln(e.stdout, "No runs. Create one with 'piperun initpiperun NAME --config FILE'.")
		return nil
	}
	w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tSTATUS\tOWNER\tIMAGES\tSOURCES\tVERSION\tUPDATED\tDESCRIPTION")
	for _, s := range runs {
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", safe(s.Name), s.Status, safe(s.Owner), s.NImages, s.NSources, s.Version, showTime(s.Updated), oneLine(safe(s.Description), 50))
	}
	return w.Flush()
}

// oneLine shortens text to one line of at most n runes.
func oneLine(text string, n int) string {
	text = strings.Join(strings.Fields(text), " ")
	if r := []rune(text); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return text
}

var logsHelp = help{
	usage: []string{"logs RUN [LOG] [--from N]"},
	description: `
Without LOG, lists the logs of the run RUN, newest first: one run log per
processing job ("<time>_log.txt") and one restore log per restore
("<time>_restore_log.txt"), named as VAST names them. With LOG, prints that
log, from line --from on.`,
	env: clientEnv,
	examples: `
piperun logs my-run
piperun logs my-run 2024-05-01-12-00-00_log.txt --from 20`,
}

func cmdLogs(e *env, args []string) error {
	fs := e.flagSet()
	clientFlags(fs)
	from := fs.Int64("from", 1, "first line to print (1-based)")
	pos, err := e.parse(fs, logsHelp, args, 1, 2, "the RUN")
	if err != nil {
		return err
	}
	if *from < 1 {
		return usagef("--from must be at least 1")
	}
	r, err := e.client(fs)
	if err != nil {
		return err
	}
	if len(pos) == 2 {
		lines, err := r.Log(e.ctx, pos[0], pos[1], *from)
		if err != nil {
			return r.explain(err)
		}
		for _, l := range lines {
			fmt.Fprintln(e.stdout, safe(l))
		}
		return nil
	}
	logs, err := r.Logs(e.ctx, pos[0])
	if err != nil {
		return r.explain(err)
	}
	if len(logs) == 0 {
		fmt.Fprintf(e.stdout, "Run %s has no logs yet.\n", pos[0])
		return nil
	}
	w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "LOG\tKIND\tCREATED")
	for _, l := range logs {
		fmt.Fprintf(w, "%s\t%s\t%s\n", safe(l.Name), l.Kind, showTime(l.Created))
	}
	return w.Flush()
}
