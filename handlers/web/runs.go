// The run list, the new-run form and the run page.

package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/gorilla/mux"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/handlers/request"
	"github.com/piperun/piperun/projections"
)

// newRunForm is the "New run" form, with its values and what is wrong
// with them.
type newRunForm struct {
	Name, Description, Config string
	Open                      bool
	NameError, DescError      string
	ConfigProblems            []problem
	Error                     string
}

type runsPage struct {
	base
	Runs []projections.RunSummary
	Form newRunForm
}

func (s *Server) runsPage(w http.ResponseWriter, r *http.Request) {
	s.showRuns(w, r, http.StatusOK, newRunForm{})
}

func (s *Server) showRuns(w http.ResponseWriter, r *http.Request, code int, form newRunForm) {
	runs, err := s.Read.ListRuns(r.Context())
	if err != nil {
		s.fail(w, r, request.StatusFor(err), err)
		return
	}
	form.Open = form.Open || len(runs) == 0
	s.render(w, r, code, "runs", runsPage{base: s.base(r, "Runs", "runs"), Runs: runs, Form: form})
}

func (s *Server) createRun(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.fail(w, r, http.StatusBadRequest, fmt.Errorf("read the new run form: %w", err))
		return
	}
	f := newRunForm{
		Name:        strings.TrimSpace(r.PostFormValue("name")),
		Description: strings.TrimSpace(normaliseNewlines(r.PostFormValue("description"))),
		Config:      normaliseNewlines(r.PostFormValue("config")),
		Open:        true,
	}
	if err := domain.ValidateRunName(f.Name); err != nil {
		f.NameError = userMessage(err)
	}
	if err := domain.ValidateDescription(f.Description); err != nil {
		f.DescError = userMessage(err)
	}
	cfg, err := s.ParseConfig([]byte(f.Config))
	if err != nil {
		f.ConfigProblems = problemsOf(err)
	}
	if f.NameError != "" || f.DescError != "" || len(f.ConfigProblems) > 0 {
		s.showRuns(w, r, http.StatusBadRequest, f)
		return
	}
	res, err := s.Svc.CreateRun(r.Context(), domain.CreateRun{Name: f.Name, Description: f.Description, Config: cfg, Actor: request.ActorFrom(r.Context())})
	if err != nil {
		code := request.StatusFor(err)
		if code == http.StatusInternalServerError || code == http.StatusServiceUnavailable {
			s.fail(w, r, code, err)
			return
		}
		if errors.Is(err, domain.ErrExists) {
			f.NameError = userMessage(err)
		} else {
			f.Error = userMessage(err)
		}
		s.showRuns(w, r, code, f)
		return
	}
	s.settle(w, r, res.Position)
	http.Redirect(w, r, "/runs/"+url.PathEscape(f.Name), http.StatusSeeOther)
}

// settle waits (briefly) until the read models show a command's effect,
// so that the page the user is sent to shows it if this replica serves
// it, and sets the position cookie, so that it does if another one does.
func (s *Server) settle(w http.ResponseWriter, r *http.Request, pos int64) {
	s.Positions.Settle(w, r, pos)
}

func normaliseNewlines(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

type runPage struct {
	base
	Run         projections.RunDetail
	MayChange   bool
	Busy        bool
	ProcessVerb string
	// Cancellable: the run has a job queued or running, which Cancel Job
	// ends.
	Cancellable bool
}

// mayChange mirrors the domain's rule for who may change a run, to decide
// which actions to show; the API decides again on every request.
func mayChange(a domain.Actor, owner string) bool {
	return a.Admin || (a.Name != "" && a.Name == owner)
}

func busy(st domain.Status) bool {
	switch st {
	case domain.StatusQueued, domain.StatusRunning, domain.StatusRestoring, domain.StatusDeleting:
		return true
	}
	return false
}

// processVerb is the process button's label, as the VAST pipeline words it.
func processVerb(st domain.Status) string {
	if st == domain.StatusInitialised {
		return "Process Run"
	}
	return "Add Images or Re-Process Run"
}

func (s *Server) runPage(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	d, err := s.Read.GetRun(r.Context(), name)
	if err != nil {
		s.fail(w, r, request.StatusFor(err), err)
		return
	}
	a := request.ActorFrom(r.Context())
	s.render(w, r, http.StatusOK, "run", runPage{
		base: s.base(r, d.Name, "run"), Run: d, MayChange: mayChange(a, d.Owner),
		Busy: busy(d.Status), ProcessVerb: processVerb(d.Status),
		Cancellable: d.Status == domain.StatusQueued || d.Status == domain.StatusRunning,
	})
}
