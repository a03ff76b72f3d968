package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/handlers/request"
	"github.com/piperun/piperun/projections"
)

// historyRow is one event of the timeline.
type historyRow struct {
	Version int64
	Time    time.Time
	Actor   string
	Type    string
	Label   string
	Summary string
}

type historyPage struct {
	base
	Name     string
	Rows     []historyRow
	Latest   int64
	Version  int64
	At       projections.RunDetail
	AtExists bool
	Findings []domain.AuditFinding
}

// historyPage shows a run's event timeline and the run as it was at any
// version (?version=N), replayed from the stream: the audit view. It works
// for deleted runs too, whose streams remain.
func (s *Server) historyPage(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	recs, _, err := s.Svc.History(r.Context(), name)
	if err != nil {
		s.fail(w, r, request.StatusFor(err), err)
		return
	}
	if len(recs) == 0 {
		s.fail(w, r, http.StatusNotFound, fmt.Errorf("run %q has no history: it never existed", name))
		return
	}
	latest := recs[len(recs)-1].Version
	version := latest
	if v := r.URL.Query().Get("version"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 || n > latest {
			s.fail(w, r, http.StatusBadRequest, fmt.Errorf("version must be a whole number from 1 to %d, got %q", latest, v))
			return
		}
		version = n
	}
	st := domain.StateAt(recs, version)
	rows := make([]historyRow, len(recs))
	for i, rec := range recs {
		rows[i] = historyRow{
			Version: rec.Version, Time: rec.Time, Actor: rec.Actor,
			Type: rec.Event.EventType(), Label: eventLabel(rec.Event), Summary: eventSummary(rec.Event),
		}
	}
	s.render(w, r, http.StatusOK, "history", historyPage{
		base: s.base(r, name+" — history", "history"),
		Name: name, Rows: rows, Latest: latest, Version: version,
		At: projections.View(st), AtExists: st.Exists(), Findings: domain.Audit(recs),
	})
}

// eventLabel names an event for people.
func eventLabel(e domain.Event) string {
	switch e.(type) {
	case domain.RunCreated:
		return "Run created"
	case domain.ConfigUpdated:
		return "Configuration changed"
	case domain.ProcessingRequested:
		return "Processing requested"
	case domain.ProcessingStarted:
		return "Processing started"
	case domain.ProcessingCompleted:
		return "Processing completed"
	case domain.ProcessingFailed:
		return "Processing failed"
	case domain.LogWritten:
		return "Log written"
	case domain.RestoreRequested:
		return "Restore requested"
	case domain.RunRestored:
		return "Run restored"
	case domain.RestoreFailed:
		return "Restore failed"
	case domain.DeletionRequested:
		return "Deletion requested"
	case domain.RunDeleted:
		return "Run deleted"
	}
	return e.EventType()
}

// eventSummary says what an event changed, in a line.
func eventSummary(e domain.Event) string {
	switch e := e.(type) {
	case domain.RunCreated:
		s := fmt.Sprintf("owner %s, %s", e.Owner, plural(len(e.Config.Inputs.Images), "image"))
		if e.Description != "" {
			s += fmt.Sprintf(", description %q", e.Description)
		}
		return s
	case domain.ConfigUpdated:
		return plural(len(e.Config.Inputs.Images), "input image")
	case domain.ProcessingRequested:
		var parts []string
		if e.Mode == domain.ModeAdd {
			parts = append(parts, "add mode: "+strings.Join(baseNames(e.AddedImages), ", "))
			if e.Backup != nil {
				parts = append(parts, fmt.Sprintf("backup taken of the run as at version %d", e.Backup.Version-1))
			}
		} else {
			parts = append(parts, fmt.Sprintf("full run over %s", plural(len(e.Config.Inputs.Images), "image")))
		}
		if e.FullRerun {
			parts = append(parts, "full re-run")
		}
		if e.Debug {
			parts = append(parts, "debug log")
		}
		return strings.Join(parts, "; ") + "; log " + e.Log
	case domain.ProcessingStarted:
		return "job " + domain.ShortID(e.JobID)
	case domain.ProcessingCompleted:
		f := e.Products.Figures
		return fmt.Sprintf("%s, %s, %s, %s",
			plural(f.NImages, "image"), plural(f.NSources, "source"), plural(f.NSelavyMeasurements, "selavy measurement"), plural(f.NNewSources, "new source"))
	case domain.ProcessingFailed:
		return e.Reason
	case domain.LogWritten:
		return fmt.Sprintf("%s to %s", plural(len(e.Lines), "line"), e.Log)
	case domain.RestoreRequested:
		s := fmt.Sprintf("back to the run as at version %d", e.BackupVersion-1)
		if e.Debug {
			s += "; debug log"
		}
		return s + "; log " + e.Log
	case domain.RunRestored:
		return fmt.Sprintf("configuration and products of version %d brought back; %s of the addition abandoned", e.BackupVersion-1, plural(len(e.Abandoned), "product"))
	case domain.RestoreFailed:
		return e.Reason
	case domain.RunDeleted:
		return plural(len(e.Artifacts), "product") + " released"
	}
	return ""
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
