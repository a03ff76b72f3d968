package cli

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/piperun/piperun/client"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/eventjson"
)

var historyHelp = help{
	usage: []string{"history RUN [--json] [--no-logs]"},
	description: `
Shows the event timeline of the run RUN, oldest first, one line per event:
its version, time, actor (a user, or system:... for the workers), type and
a short summary of its data (for a processing request its mode and the
images it adds; for a restore request the backup version; for failures the
reason). Versions are those 'piperun status RUN --version N' accepts.

The history of a name spans every run that had it: a deleted run's events
stay before those of a new run of the same name.`,
	env: clientEnv,
	examples: `
piperun history my-run
piperun history my-run --no-logs
piperun history my-run --json | jq '.[] | select(.type == "run.restored.v1")'`,
}

func cmdHistory(e *env, args []string) error {
	fs := e.flagSet()
	clientFlags(fs)
	asJSON := fs.Bool("json", false, "print the events as the API returns them (a JSON array)")
	noLogs := fs.Bool("no-logs", false, "leave out the events that only write log lines")
	pos, err := e.parse(fs, historyHelp, args, 1, 1, "the RUN")
	if err != nil {
		return err
	}
	r, err := e.client(fs)
	if err != nil {
		return err
	}
	evs, err := r.Events(e.ctx, pos[0])
	if err != nil {
		return r.explain(err)
	}
	if *noLogs {
		kept := evs[:0]
		for _, ev := range evs {
			if ev.Type != domain.TypeLogWritten {
				kept = append(kept, ev)
			}
		}
		evs = kept
	}
	if *asJSON {
		if evs == nil {
			evs = []client.Event{}
		}
		return writeJSON(e.stdout, evs)
	}
	w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "VERSION\tTIME\tACTOR\tTYPE\tSUMMARY")
	for _, ev := range evs {
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\n", ev.Version, showTime(ev.Time), safe(ev.Actor), safe(ev.Type), safe(summarize(ev)))
	}
	return w.Flush()
}

// summarize describes an event's data in a few words.
func summarize(ev client.Event) string {
	e, err := eventjson.Decode(ev.Type, ev.Data)
	if err != nil {
		return "(cannot decode: " + err.Error() + ")"
	}
	var parts []string
	add := func(k string, v any) { parts = append(parts, fmt.Sprintf("%s=%v", k, v)) }
	quoted := func(k, v string) { parts = append(parts, k+"="+strconv.Quote(oneLine(v, 120))) }
	switch e := e.(type) {
	case domain.RunCreated:
		add("owner", e.Owner)
		add("images", len(e.Config.Inputs.Images))
		if e.Description != "" {
			quoted("description", e.Description)
		}
	case domain.ConfigUpdated:
		add("images", len(e.Config.Inputs.Images))
	case domain.ProcessingRequested:
		add("mode", e.Mode)
		add("job", domain.ShortID(e.JobID))
		if e.Mode == domain.ModeAdd {
			add("added", "["+strings.Join(e.AddedImages, " ")+"]")
			if e.Backup != nil {
				add("backup_version", e.Backup.Version)
			}
		} else {
			add("images", len(e.Config.Inputs.Images))
		}
		if e.FullRerun {
			add("full_rerun", true)
		}
		if e.Debug {
			add("debug", true)
		}
		add("log", e.Log)
	case domain.ProcessingStarted:
		add("job", domain.ShortID(e.JobID))
	case domain.ProcessingCompleted:
		add("job", domain.ShortID(e.JobID))
		add("images", e.Products.Figures.NImages)
		add("sources", e.Products.Figures.NSources)
		add("artifacts", len(e.Products.Artifacts))
	case domain.ProcessingFailed:
		add("job", domain.ShortID(e.JobID))
		quoted("reason", e.Reason)
	case domain.LogWritten:
		add("log", e.Log)
		add("lines", len(e.Lines))
	case domain.RestoreRequested:
		add("request", domain.ShortID(e.RequestID))
		add("backup_version", e.BackupVersion)
		add("debug", e.Debug)
		add("previous_status", e.PreviousStatus)
		add("log", e.Log)
	case domain.RunRestored:
		add("request", domain.ShortID(e.RequestID))
		add("backup_version", e.BackupVersion)
		add("abandoned_artifacts", len(e.Abandoned))
	case domain.RestoreFailed:
		add("request", domain.ShortID(e.RequestID))
		quoted("reason", e.Reason)
	case domain.RunDeleted:
		add("artifacts", len(e.Artifacts))
	}
	return strings.Join(parts, " ")
}

var auditHelp = help{
	usage: []string{"audit RUN"},
	description: `
Fetches the events of the run RUN and replays them locally to check that
they form a valid history: versions without gaps, every event allowed by
the state before it, and every restore bringing back exactly the
configuration and products the run had before the addition it undid.
Prints "audit passed: N events, K restores checked", or the problems found
and exits 1.`,
	env: clientEnv,
	examples: `
piperun audit my-run`,
}

func cmdAudit(e *env, args []string) error {
	fs := e.flagSet()
	clientFlags(fs)
	pos, err := e.parse(fs, auditHelp, args, 1, 1, "the RUN")
	if err != nil {
		return err
	}
	r, err := e.client(fs)
	if err != nil {
		return err
	}
	evs, err := r.Events(e.ctx, pos[0])
	if err != nil {
		return r.explain(err)
	}
	recs := make([]domain.Recorded, 0, len(evs))
	restores := 0
	for _, ev := range evs {
		de, err := eventjson.Decode(ev.Type, ev.Data)
		if err != nil {
			return fmt.Errorf("audit of run %s: event %d: %w", pos[0], ev.Version, err)
		}
		if _, ok := de.(domain.RunRestored); ok {
			restores++
		}
		recs = append(recs, domain.Recorded{Version: ev.Version, Time: ev.Time, Actor: ev.Actor, Event: de})
	}
	findings := domain.Audit(recs)
	if len(findings) == 0 {
		fmt.Fprintf(e.stdout, "audit passed: %d events, %d restores checked\n", len(recs), restores)
		return nil
	}
	fmt.Fprintf(e.stdout, "audit of run %s found %d problems in %d events:\n", pos[0], len(findings), len(recs))
	for _, f := range findings {
		fmt.Fprintf(e.stdout, "  %s\n", safe(f.String()))
	}
	return fmt.Errorf("the history of run %s is not valid", pos[0])
}
