package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/piperun/piperun/command"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/projections"
)

// MaxBodyBytes bounds request bodies; a configuration is far smaller.
const MaxBodyBytes = 2 << 20

// ErrUnauthorized: no valid token. HTTP 401.
var ErrUnauthorized = errors.New("unauthorized")

// ErrBadRequest: the request is malformed. HTTP 400.
var ErrBadRequest = errors.New("bad request")

// ConfigParser validates a configuration's text (including that its input
// paths stay inside the images root) and returns it in domain form.
type ConfigParser func(text []byte) (domain.RunConfig, error)

// ArtifactOpener opens a stored product by digest.
type ArtifactOpener interface {
	Open(digest string) (io.ReadCloser, error)
}

// Server holds the API's dependencies.
type Server struct {
	Svc         *command.Service
	Read        *projections.Store
	ParseConfig ConfigParser
	Logger      *slog.Logger
	// Ready reports whether the service can take commands (nil: always).
	Ready func(ctx context.Context) error
	// Health, if set, adds a detail to /healthz under "bus" (the process
	// is alive whatever it says: /healthz answers 200).
	Health func(ctx context.Context) any
	// Artifacts serves product downloads (nil: downloads are 404).
	Artifacts ArtifactOpener
	// ReadYourWrites bounds how long a command waits for the read models
	// to show its effect before answering (default 2s).
	ReadYourWrites time.Duration

	tokens   tokenCache
	catching catchUpFlight
}

// Router returns the API's routes.
func (s *Server) Router() *mux.Router {
	r := NewRouter()
	s.Register(r)
	return r
}

// NewRouter returns the router the API and the pages are registered on. It
// takes paths as they come: a path with "." or ".." segments or doubled
// slashes is matched as it is (and answered 404 by the routes' own checks)
// rather than redirected to its cleaned form, which could name another
// resource.
func NewRouter() *mux.Router {
	return mux.NewRouter().SkipClean(true)
}

// Register adds the API's routes to r.
func (s *Server) Register(r *mux.Router) {
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
	a := ActorFrom(r.Context())
	writeJSON(w, http.StatusOK, map[string]any{"name": a.Name, "admin": a.Admin})
}
