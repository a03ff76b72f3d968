package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/piperun/piperun/command"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/handlers/request"
	"github.com/piperun/piperun/projections"
)

// MaxBodyBytes bounds request bodies; a configuration is far smaller.
const MaxBodyBytes = 2 << 20

// ConfigParser validates a configuration's text (including that its input
// paths stay inside the images root) and returns it in domain form.
type ConfigParser func(text []byte) (domain.RunConfig, error)

// ArtifactOpener opens a stored product by digest.
type ArtifactOpener interface {
	Open(digest string) (io.ReadCloser, error)
}

// Server holds the API's dependencies. Svc, Read, ParseConfig, Auth and
// Positions are required; the web pages beside the API are given the same
// Auth and Positions, so that a process has one token cache and one
// catch-up of its read models at a time.
type Server struct {
	// Svc runs the commands.
	Svc *command.Service
	// Read answers the queries.
	Read *projections.Store
	// ParseConfig checks the configurations of new runs and of changes.
	ParseConfig ConfigParser
	// Auth resolves the callers' API tokens.
	Auth *request.Authenticator
	// Positions holds a request until the read models reach the position
	// it brings, and a command until they show its effect (read your
	// writes; see request.Positions).
	Positions *request.Positions
	// Logger receives errors that cannot be answered (default
	// slog.Default()).
	Logger *slog.Logger
	// Ready reports whether the service can take commands (nil: always).
	Ready func(ctx context.Context) error
	// Health, if set, adds a detail to /healthz under "bus" (the process
	// is alive whatever it says: /healthz answers 200).
	Health func(ctx context.Context) any
	// Artifacts serves product downloads (nil: downloads are 404).
	Artifacts ArtifactOpener
}

// Router returns the API's routes, or an error if a required dependency
// is missing.
func (s *Server) Router() (*mux.Router, error) {
	r := NewRouter()
	if err := s.Register(r); err != nil {
		return nil, err
	}
	return r, nil
}

// NewRouter returns the router the API and the pages are registered on. It
// takes paths as they come: a path with "." or ".." segments or doubled
// slashes is matched as it is (and answered 404 by the routes' own checks)
// rather than redirected to its cleaned form, which could name another
// resource.
func NewRouter() *mux.Router {
	return mux.NewRouter().SkipClean(true)
}

// Register adds the API's routes to r. It fails, adding nothing, if a
// required dependency is missing.
func (s *Server) Register(r *mux.Router) error {
	if s.Svc == nil || s.Read == nil || s.ParseConfig == nil || s.Auth == nil || s.Positions == nil {
		return errors.New("the API needs its Svc, Read, ParseConfig, Auth and Positions")
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	r.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		out := map[string]any{"status": "ok"}
		if s.Health != nil {
			out["bus"] = s.Health(r.Context())
		}
		writeJSON(w, http.StatusOK, out)
	}).Methods(http.MethodGet)
	r.HandleFunc("/readyz", s.readyz).Methods(http.MethodGet)

	v1 := r.PathPrefix("/api/v1").Subrouter()
	v1.Use(s.limitBody)
	v1.Handle("/runs", s.auth(s.createRun)).Methods(http.MethodPost)
	v1.Handle("/runs", s.auth(s.listRuns)).Methods(http.MethodGet)
	v1.Handle("/runs/{name}", s.auth(s.getRun)).Methods(http.MethodGet)
	v1.Handle("/runs/{name}", s.auth(s.deleteRun)).Methods(http.MethodDelete)
	v1.Handle("/runs/{name}/config", s.auth(s.putConfig)).Methods(http.MethodPut)
	v1.Handle("/runs/{name}/process", s.auth(s.process)).Methods(http.MethodPost)
	v1.Handle("/runs/{name}/restore", s.auth(s.restorePreview)).Methods(http.MethodGet)
	v1.Handle("/runs/{name}/restore", s.auth(s.restore)).Methods(http.MethodPost)
	v1.Handle("/runs/{name}/cancel", s.auth(s.cancel)).Methods(http.MethodPost)
	v1.Handle("/runs/{name}/logs", s.auth(s.listLogs)).Methods(http.MethodGet)
	v1.Handle("/runs/{name}/logs/{log}", s.auth(s.getLog)).Methods(http.MethodGet)
	v1.Handle("/runs/{name}/events", s.auth(s.events)).Methods(http.MethodGet)
	v1.Handle("/runs/{name}/products", s.auth(s.listProducts)).Methods(http.MethodGet)
	v1.Handle("/runs/{name}/products/{file:.+}", s.auth(s.getProduct)).Methods(http.MethodGet)
	v1.Handle("/whoami", s.auth(s.whoami)).Methods(http.MethodGet)
	v1.Handle("/users/{user}/revoke", s.auth(s.revokeToken)).Methods(http.MethodPost)
	v1.Handle("/users/{user}/rotate", s.auth(s.rotateToken)).Methods(http.MethodPost)
	v1.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, fmt.Errorf("%w: no such API route %s %s", domain.ErrNotFound, r.Method, r.URL.Path))
	})
	v1.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": fmt.Sprintf("method %s not allowed on %s", r.Method, r.URL.Path)})
	})
	return nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.Ready != nil {
		if err := s.Ready(r.Context()); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "error": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	a := request.ActorFrom(r.Context())
	writeJSON(w, http.StatusOK, map[string]any{"name": a.Name, "admin": a.Admin})
}
