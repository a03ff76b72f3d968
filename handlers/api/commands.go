// Command endpoints of a run, and waiting for their effect in the read models.

package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/handlers/request"
	"github.com/piperun/piperun/projections"
)

// settle waits until the read models show a command's effect, so that the
// caller's next read sees it; unless the caller sent "Prefer:
// respond-async" (RFC 7240), which answers as soon as the command's events
// are stored, with "Preference-Applied: respond-async": a read right after
// may then show the run as it was, unless it brings the answer's position
// (request.SetPosition, request.Positions.Await).
func (s *Server) settle(w http.ResponseWriter, r *http.Request, pos int64) {
	if prefersAsync(r) {
		request.SetPosition(w, r, pos)
		w.Header().Set("Preference-Applied", "respond-async")
		return
	}
	s.Positions.Settle(w, r, pos)
}

// prefersAsync reports whether the request's Prefer header asks for
// respond-async.
func prefersAsync(r *http.Request) bool {
	for _, v := range r.Header.Values("Prefer") {
		for pref := range strings.SplitSeq(v, ",") {
			name, _, _ := strings.Cut(strings.TrimSpace(pref), ";")
			if strings.EqualFold(strings.TrimSpace(name), "respond-async") {
				return true
			}
		}
	}
	return false
}

// commandView is a run as a command left it, with the global log position
// of the command's last event (also in request.PositionHeader).
type commandView struct {
	projections.RunDetail
	Position int64 `json:"position"`
}

type createRunRequest struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Config      string `json:"config"`
}

func (s *Server) createRun(w http.ResponseWriter, r *http.Request) {
	var req createRunRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if err := domain.ValidateRunName(req.Name); err != nil {
		writeError(w, err)
		return
	}
	cfg, err := s.ParseConfig([]byte(req.Config))
	if err != nil {
		writeError(w, err)
		return
	}
	res, err := s.Svc.CreateRun(r.Context(), domain.CreateRun{Name: req.Name, Description: req.Description, Config: cfg, Actor: request.ActorFrom(r.Context())})
	if err != nil {
		writeError(w, err)
		return
	}
	s.settle(w, r, res.Position)
	writeJSON(w, http.StatusCreated, commandView{RunDetail: projections.View(res.Run), Position: res.Position})
}

type configRequest struct {
	Config string `json:"config"`
}

func (s *Server) putConfig(w http.ResponseWriter, r *http.Request) {
	var req configRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	cfg, err := s.ParseConfig([]byte(req.Config))
	if err != nil {
		writeError(w, err)
		return
	}
	res, err := s.Svc.UpdateConfig(r.Context(), mux.Vars(r)["name"], cfg, request.ActorFrom(r.Context()))
	if err != nil {
		writeError(w, err)
		return
	}
	s.settle(w, r, res.Position)
	writeJSON(w, http.StatusOK, commandView{RunDetail: projections.View(res.Run), Position: res.Position})
}

type processRequest struct {
	Debug     bool `json:"debug"`
	FullRerun bool `json:"full_rerun"`
}

func (s *Server) process(w http.ResponseWriter, r *http.Request) {
	var req processRequest
	if err := decodeOptional(r, &req); err != nil {
		writeError(w, err)
		return
	}
	res, err := s.Svc.RequestProcessing(r.Context(), mux.Vars(r)["name"], req.Debug, req.FullRerun, request.ActorFrom(r.Context()))
	if err != nil {
		writeError(w, err)
		return
	}
	s.settle(w, r, res.Position)
	out := map[string]any{"status": res.Run.Status, "version": res.Run.Version, "position": res.Position}
	if res.Run.Job != nil {
		out["job_id"] = res.Run.Job.ID
		out["mode"] = res.Run.Job.Mode
		out["log"] = res.Run.Job.Log
	}
	writeJSON(w, http.StatusAccepted, out)
}

func (s *Server) restorePreview(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	st, err := s.Read.GetRunState(r.Context(), name)
	if err != nil {
		writeError(w, err)
		return
	}
	out := map[string]any{"available": st.RestoreAvailable(), "config": ""}
	a := request.ActorFrom(r.Context())
	out["allowed"] = a.Admin || a.Name == st.Owner
	if st.Backup != nil {
		out["config"] = st.Backup.Config.YAML
		out["backup_version"] = st.Backup.Version
		out["images"] = st.Backup.Config.Inputs.Images
		out["figures"] = st.Backup.Products.Figures
	}
	if !st.RestoreAvailable() {
		switch {
		case st.Backup == nil:
			out["reason"] = "the run has no backup: a backup is taken when images are added, and a restore uses it up"
		default:
			out["reason"] = fmt.Sprintf("the run is %s; a restore needs status Completed or Error", st.Status)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

type restoreRequest struct {
	Debug bool `json:"debug"`
}

func (s *Server) restore(w http.ResponseWriter, r *http.Request) {
	var req restoreRequest
	if err := decodeOptional(r, &req); err != nil {
		writeError(w, err)
		return
	}
	res, err := s.Svc.RequestRestore(r.Context(), mux.Vars(r)["name"], req.Debug, request.ActorFrom(r.Context()))
	if err != nil {
		writeError(w, err)
		return
	}
	s.settle(w, r, res.Position)
	out := map[string]any{"status": res.Run.Status, "version": res.Run.Version, "position": res.Position}
	if res.Run.Restore != nil {
		out["request_id"] = res.Run.Restore.ID
		out["log"] = res.Run.Restore.Log
	}
	writeJSON(w, http.StatusAccepted, out)
}

// cancel ends the run's Queued or Running job (see command.Service.CancelJob).
func (s *Server) cancel(w http.ResponseWriter, r *http.Request) {
	if err := decodeOptional(r, &struct{}{}); err != nil {
		writeError(w, err)
		return
	}
	res, err := s.Svc.CancelJob(r.Context(), mux.Vars(r)["name"], request.ActorFrom(r.Context()))
	if err != nil {
		writeError(w, err)
		return
	}
	s.settle(w, r, res.Position)
	out := map[string]any{"status": res.Run.Status, "version": res.Run.Version, "position": res.Position}
	for _, e := range res.Events {
		if f, ok := e.(domain.ProcessingFailed); ok {
			out["job_id"] = f.JobID
			out["reason"] = f.Reason
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) deleteRun(w http.ResponseWriter, r *http.Request) {
	res, err := s.Svc.RequestDeletion(r.Context(), mux.Vars(r)["name"], request.ActorFrom(r.Context()))
	if err != nil {
		writeError(w, err)
		return
	}
	s.settle(w, r, res.Position)
	writeJSON(w, http.StatusAccepted, map[string]any{"status": res.Run.Status, "version": res.Run.Version, "position": res.Position})
}
