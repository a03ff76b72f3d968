// Authentication by bearer token, and token revocation and rotation.

package api

import (
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"github.com/piperun/piperun/handlers/request"
)

func (s *Server) auth(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := request.ActorFrom(r.Context()); a.Name != "" {
			if err := s.Positions.Await(r); err != nil {
				writeError(w, err)
				return
			}
			h(w, r)
			return
		}
		authz := r.Header.Get("Authorization")
		token, ok := strings.CutPrefix(authz, "Bearer ")
		if !ok {
			token = ""
		}
		a, err := s.Auth.Authenticate(r.Context(), strings.TrimSpace(token))
		if err != nil {
			writeError(w, err)
			return
		}
		// Only an authenticated request may make this replica wait.
		if err := s.Positions.Await(r); err != nil {
			writeError(w, err)
			return
		}
		h(w, r.WithContext(request.WithActor(r.Context(), a)))
	})
}

// revokeToken withdraws a user's API token (administrators only). The token
// and the user's web sessions stop working at once on this replica (the
// answer waits for its read models), and on every other as soon as its
// read models reach the revocation.
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["user"]
	pos, err := s.Svc.RevokeToken(r.Context(), name, request.ActorFrom(r.Context()))
	if err != nil {
		writeError(w, err)
		return
	}
	// Whatever the Prefer header says: an administrator who revokes a
	// token must be able to rely on its being refused when the answer
	// comes.
	s.Positions.Settle(w, r, pos)
	writeJSON(w, http.StatusOK, map[string]any{"user": name, "revoked": true, "position": pos})
}

// rotateToken gives a user a new API token (administrators only) and
// returns it, this once; the old one stops working as a revoked one does.
func (s *Server) rotateToken(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["user"]
	token, pos, err := s.Svc.RotateToken(r.Context(), name, request.ActorFrom(r.Context()))
	if err != nil {
		writeError(w, err)
		return
	}
	s.Positions.Settle(w, r, pos) // whatever the Prefer header says, as revokeToken
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"user": name, "token": token, "position": pos})
}
