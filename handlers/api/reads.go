// Read endpoints of runs: the list, a run, its logs, its events and its products.

package api

import (
	"github.com/piperun/piperun/apitypes"

	"fmt"
	"io"
	"net/http"
	"path"
	"strconv"

	"github.com/gorilla/mux"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/handlers/request"
	"github.com/piperun/piperun/projections"
)

func (s *Server) listRuns(w http.ResponseWriter, r *http.Request) {
	runs, err := s.Read.ListRuns(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"runs": runs})
}

func (s *Server) getRun(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	if v := r.URL.Query().Get("version"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			writeError(w, fmt.Errorf("%w: version must be a positive integer, got %q", request.ErrBadRequest, v))
			return
		}
		recs, _, err := s.Svc.History(r.Context(), name)
		if err != nil {
			writeError(w, err)
			return
		}
		if len(recs) == 0 {
			writeError(w, fmt.Errorf("%w: run %q does not exist", domain.ErrNotFound, name))
			return
		}
		if last := recs[len(recs)-1].Version; n > last {
			writeError(w, fmt.Errorf("%w: run %q has %d versions; version %d does not exist yet", request.ErrBadRequest, name, last, n))
			return
		}
		st := domain.StateAt(recs, n)
		if st.Name == "" {
			st.Name = name
		}
		writeJSON(w, http.StatusOK, projections.View(st))
		return
	}
	d, err := s.Read.GetRun(r.Context(), name)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) listLogs(w http.ResponseWriter, r *http.Request) {
	d, err := s.Read.GetRun(r.Context(), mux.Vars(r)["name"])
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"logs": d.Logs})
}

func (s *Server) getLog(w http.ResponseWriter, r *http.Request) {
	vars := mux.Vars(r)
	from := int64(1)
	if v := r.URL.Query().Get("from"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			writeError(w, fmt.Errorf("%w: from must be a positive line number, got %q", request.ErrBadRequest, v))
			return
		}
		from = n
	}
	lines, err := s.Read.LogLines(r.Context(), vars["name"], vars["log"], from)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}

// EventView is an event as the API shows it.
type EventView = apitypes.EventView

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	_, evs, err := s.Svc.History(r.Context(), name)
	if err != nil {
		writeError(w, err)
		return
	}
	if len(evs) == 0 {
		writeError(w, fmt.Errorf("%w: run %q does not exist", domain.ErrNotFound, name))
		return
	}
	out := make([]EventView, 0, len(evs))
	for _, ev := range evs {
		out = append(out, EventView{Version: ev.Version, Position: ev.Position, Type: ev.Type, Time: ev.Time, Actor: ev.Actor, Data: ev.Data})
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": out})
}

func (s *Server) listProducts(w http.ResponseWriter, r *http.Request) {
	d, err := s.Read.GetRun(r.Context(), mux.Vars(r)["name"])
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"products": d.Products})
}

// getProduct streams one product of the run's current products. The file
// is looked up by name in the run's manifest, never used as a path.
func (s *Server) getProduct(w http.ResponseWriter, r *http.Request) {
	vars := mux.Vars(r)
	d, err := s.Read.GetRun(r.Context(), vars["name"])
	if err != nil {
		writeError(w, err)
		return
	}
	for _, a := range d.Products {
		if a.Name != vars["file"] {
			continue
		}
		if s.Artifacts == nil {
			break
		}
		f, err := s.Artifacts.Open(a.Digest)
		if err != nil {
			writeError(w, fmt.Errorf("open product %s of run %s: %w", a.Name, d.Name, err))
			return
		}
		defer f.Close()
		w.Header().Set("Content-Type", "application/vnd.apache.parquet")
		w.Header().Set("Content-Length", strconv.FormatInt(a.Size, 10))
		w.Header().Set("ETag", `"`+a.Digest+`"`)
		w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", path.Base(a.Name)))
		if _, err := io.Copy(w, f); err != nil {
			s.Logger.Warn("send product", "run", d.Name, "product", a.Name, "err", err)
		}
		return
	}
	writeError(w, fmt.Errorf("%w: run %q has no product %q", domain.ErrNotFound, d.Name, vars["file"]))
}
