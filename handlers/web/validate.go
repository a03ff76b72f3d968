// Checking a configuration as it is typed, and what processing it would do.

package web

import (
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"

	"github.com/gorilla/mux"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/handlers/request"
	"github.com/piperun/piperun/runconfig"
)

// problem is one configuration problem as the pages show it.
type problem struct {
	Field   string `json:"field,omitempty"`
	Line    int    `json:"line,omitempty"`
	Message string `json:"message"`
}

// problemsOf lists what is wrong with a configuration: one entry per
// problem, with its line, when the error wraps a
// *runconfig.ValidationError, and one entry otherwise.
func problemsOf(err error) []problem {
	var ve *runconfig.ValidationError
	if errors.As(err, &ve) && len(ve.Problems) > 0 {
		out := make([]problem, len(ve.Problems))
		for i, p := range ve.Problems {
			out[i] = problem{Field: p.Field, Line: p.Line, Message: p.Message}
		}
		return out
	}
	return []problem{{Message: userMessage(err)}}
}

type validateRequest struct {
	Config string `json:"config"`
}

// validateConfig checks a configuration without saving it, and says what
// processing it would do: add images (keeping a backup to restore) or
// need a full re-run.
func (s *Server) validateConfig(w http.ResponseWriter, r *http.Request) {
	var req validateRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	st, err := s.Read.GetRunState(r.Context(), mux.Vars(r)["name"])
	if err != nil {
		s.fail(w, r, request.StatusFor(err), err)
		return
	}
	cfg, err := s.ParseConfig([]byte(normaliseNewlines(req.Config)))
	if err != nil {
		writeJSON(w, http.StatusOK, map[string]any{"valid": false, "problems": problemsOf(err)})
		return
	}
	out := map[string]any{"valid": true, "problems": []problem{}, "images": cfg.Inputs.Images}
	switch {
	case st.LastSuccessful == nil:
		out["plan"] = fmt.Sprintf("Processing will run the pipeline over %d images.", len(cfg.Inputs.Images))
	default:
		added, err := domain.AddedImages(*st.LastSuccessful, cfg)
		switch {
		case err != nil:
			out["plan"] = "Processing will need a full re-run: " + userMessage(err)
		case len(added) == 0:
			out["plan"] = "The inputs are those of the last successful run: processing will re-run it."
		default:
			out["plan"] = fmt.Sprintf("Processing will add %d image(s) (%s) and keep a backup that Restore Run can return to.", len(added), strings.Join(baseNames(added), ", "))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func baseNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = path.Base(p)
	}
	return out
}
