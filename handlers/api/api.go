package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/piperun/piperun/app"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/eventstore"
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
	Svc         *app.Service
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

// tokenCache remembers the actors of token hashes already resolved, so that
// a request does not query the read models to authenticate. A token stops
// working when it is revoked or rotated (events of the user's stream): the
// cache holds its entries under the read models' users generation
// (projections.Store.UsersGeneration), which changes when this replica's
// read models apply such an event, and forgets them all when it does. So a
// replica refuses a revoked token as soon as its read models reach the
// revocation, as it would without the cache.
type tokenCache struct {
	mu     sync.RWMutex
	gen    int64
	byHash map[string]domain.Actor
}

// maxCachedTokens bounds the cache; it is emptied when full.
const maxCachedTokens = 10_000

// get returns the actor of hash if it was resolved under generation gen.
func (c *tokenCache) get(hash string, gen int64) (domain.Actor, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.gen != gen {
		return domain.Actor{}, false
	}
	a, ok := c.byHash[hash]
	return a, ok
}

// put remembers the actor of hash, resolved under generation gen (read
// before the lookup, so that a change during it makes the entry stale).
func (c *tokenCache) put(hash string, a domain.Actor, gen int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen < c.gen {
		return
	}
	if c.byHash == nil || len(c.byHash) >= maxCachedTokens || gen != c.gen {
		c.byHash = make(map[string]domain.Actor)
		c.gen = gen
	}
	c.byHash[hash] = a
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

type ctxKey struct{}

// ActorFrom returns the authenticated actor of a request.
func ActorFrom(ctx context.Context) domain.Actor {
	a, _ := ctx.Value(ctxKey{}).(domain.Actor)
	return a
}

// WithActor returns ctx carrying an authenticated actor (used by the web
// pages, which authenticate with a session cookie).
func WithActor(ctx context.Context, a domain.Actor) context.Context {
	return context.WithValue(ctx, ctxKey{}, a)
}

// Authenticate resolves an API token to a user.
func (s *Server) Authenticate(ctx context.Context, token string) (domain.Actor, error) {
	if token == "" || len(token) > 256 {
		return domain.Actor{}, fmt.Errorf("%w: a valid API token is required (Authorization: Bearer <token>)", ErrUnauthorized)
	}
	hash := app.HashToken(token)
	// Looked up by its SHA-256, here as in the read models' index: what the
	// timing of a lookup can tell is about a hash, which does not help to
	// guess a token.
	gen := s.Read.UsersGeneration()
	if a, ok := s.tokens.get(hash, gen); ok {
		return a, nil
	}
	u, err := s.Read.UserByTokenHash(ctx, hash)
	if errors.Is(err, projections.ErrNotFound) {
		// The user may have been created a moment ago by `piperun user add`
		// in another process: read the log up to its head once.
		if cerr := s.Read.CatchUp(ctx, s.Svc.Store); cerr != nil {
			return domain.Actor{}, cerr
		}
		u, err = s.Read.UserByTokenHash(ctx, hash)
	}
	if errors.Is(err, projections.ErrNotFound) {
		return domain.Actor{}, fmt.Errorf("%w: the API token is not valid", ErrUnauthorized)
	}
	if err != nil {
		return domain.Actor{}, err
	}
	a := domain.Actor{Name: u.Name, Admin: u.Admin}
	s.tokens.put(hash, a, gen)
	return a, nil
}

func (s *Server) auth(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := ActorFrom(r.Context()); a.Name != "" {
			if err := s.AwaitPosition(r); err != nil {
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
		a, err := s.Authenticate(r.Context(), strings.TrimSpace(token))
		if err != nil {
			writeError(w, err)
			return
		}
		// Only an authenticated request may make this replica wait.
		if err := s.AwaitPosition(r); err != nil {
			writeError(w, err)
			return
		}
		h(w, r.WithContext(WithActor(r.Context(), a)))
	})
}

func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

// statusFor maps errors to HTTP status codes: the one place that does.
func statusFor(err error) int {
	var maxBytes *http.MaxBytesError
	switch {
	case errors.As(err, &maxBytes):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, ErrBadRequest), errors.Is(err, domain.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, domain.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, domain.ErrNotFound), errors.Is(err, projections.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, domain.ErrExists), errors.Is(err, domain.ErrRunBusy),
		errors.Is(err, domain.ErrNotRestorable), errors.Is(err, domain.ErrConflict), errors.Is(err, domain.ErrNotRunning),
		errors.Is(err, eventstore.ErrConcurrency):
		return http.StatusConflict
	case errors.Is(err, eventstore.ErrUnavailable), errors.Is(err, ErrReadModelsBehind):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// StatusFor exposes the error mapping to the web pages.
func StatusFor(err error) int { return statusFor(err) }

func writeError(w http.ResponseWriter, err error) {
	code := statusFor(err)
	msg := err.Error()
	if code == http.StatusInternalServerError {
		msg = "internal error: " + msg
	}
	if errors.Is(err, ErrReadModelsBehind) {
		w.Header().Set("Retry-After", RetryAfterSeconds)
	}
	writeJSON(w, code, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// decode reads a JSON body strictly.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var maxBytes *http.MaxBytesError
		if errors.As(err, &maxBytes) {
			return fmt.Errorf("request body larger than %d bytes: %w", MaxBodyBytes, err)
		}
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: the request body is empty; a JSON object is expected", ErrBadRequest)
		}
		return fmt.Errorf("%w: malformed JSON body: %v", ErrBadRequest, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: trailing data after the JSON object", ErrBadRequest)
	}
	// More stops at the first read error, the body limit included: read to
	// the end so that a body padded past the limit with white space is
	// refused too, not decided on its first 2 MiB.
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		var maxBytes *http.MaxBytesError
		if errors.As(err, &maxBytes) {
			return fmt.Errorf("request body larger than %d bytes: %w", MaxBodyBytes, err)
		}
		return fmt.Errorf("%w: read request body: %v", ErrBadRequest, err)
	}
	return nil
}

// decodeOptional is decode for bodies that may be empty (all fields
// optional).
func decodeOptional(r *http.Request, v any) error {
	if r.ContentLength == 0 && r.Header.Get("Transfer-Encoding") == "" {
		return nil
	}
	err := decode(r, v)
	if err != nil && strings.Contains(err.Error(), "request body is empty") {
		return nil
	}
	return err
}

// settle waits until the read models show a command's effect, so that the
// caller's next read sees it; unless the caller sent "Prefer:
// respond-async" (RFC 7240), which answers as soon as the command's events
// are stored, with "Preference-Applied: respond-async": a read right after
// may then show the run as it was, unless it brings the answer's position
// (SetPosition, AwaitPosition).
func (s *Server) settle(w http.ResponseWriter, r *http.Request, pos int64) {
	SetPosition(w, r, pos)
	if prefersAsync(r) {
		w.Header().Set("Preference-Applied", "respond-async")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.readYourWrites())
	defer cancel()
	_ = s.Read.WaitFor(ctx, pos)
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

// revokeToken withdraws a user's API token (administrators only). The token
// and the user's web sessions stop working at once on this replica (the
// answer waits for its read models), and on every other as soon as its
// read models reach the revocation.
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["user"]
	pos, err := s.Svc.RevokeToken(r.Context(), name, ActorFrom(r.Context()))
	if err != nil {
		writeError(w, err)
		return
	}
	s.settleAlways(w, r, pos)
	writeJSON(w, http.StatusOK, map[string]any{"user": name, "revoked": true, "position": pos})
}

// rotateToken gives a user a new API token (administrators only) and
// returns it, this once; the old one stops working as a revoked one does.
func (s *Server) rotateToken(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["user"]
	token, pos, err := s.Svc.RotateToken(r.Context(), name, ActorFrom(r.Context()))
	if err != nil {
		writeError(w, err)
		return
	}
	s.settleAlways(w, r, pos)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"user": name, "token": token, "position": pos})
}

// settleAlways waits until the read models reach pos, whatever the Prefer
// header says: an administrator who revokes a token must be able to rely
// on its being refused when the answer comes.
func (s *Server) settleAlways(w http.ResponseWriter, r *http.Request, pos int64) {
	SetPosition(w, r, pos)
	ctx, cancel := context.WithTimeout(r.Context(), s.readYourWrites())
	defer cancel()
	_ = s.Read.WaitFor(ctx, pos)
}

// commandView is a run as a command left it, with the global log position
// of the command's last event (also in PositionHeader).
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
	res, err := s.Svc.CreateRun(r.Context(), domain.CreateRun{Name: req.Name, Description: req.Description, Config: cfg, Actor: ActorFrom(r.Context())})
	if err != nil {
		writeError(w, err)
		return
	}
	s.settle(w, r, res.Position)
	writeJSON(w, http.StatusCreated, commandView{RunDetail: projections.View(res.Run), Position: res.Position})
}

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
			writeError(w, fmt.Errorf("%w: version must be a positive integer, got %q", ErrBadRequest, v))
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
			writeError(w, fmt.Errorf("%w: run %q has %d versions; version %d does not exist yet", ErrBadRequest, name, last, n))
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
	res, err := s.Svc.UpdateConfig(r.Context(), mux.Vars(r)["name"], cfg, ActorFrom(r.Context()))
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
	res, err := s.Svc.RequestProcessing(r.Context(), mux.Vars(r)["name"], req.Debug, req.FullRerun, ActorFrom(r.Context()))
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
	a := ActorFrom(r.Context())
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
	res, err := s.Svc.RequestRestore(r.Context(), mux.Vars(r)["name"], req.Debug, ActorFrom(r.Context()))
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

// cancel ends the run's Queued or Running job (see app.Service.CancelJob).
func (s *Server) cancel(w http.ResponseWriter, r *http.Request) {
	if err := decodeOptional(r, &struct{}{}); err != nil {
		writeError(w, err)
		return
	}
	res, err := s.Svc.CancelJob(r.Context(), mux.Vars(r)["name"], ActorFrom(r.Context()))
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
	res, err := s.Svc.RequestDeletion(r.Context(), mux.Vars(r)["name"], ActorFrom(r.Context()))
	if err != nil {
		writeError(w, err)
		return
	}
	s.settle(w, r, res.Position)
	writeJSON(w, http.StatusAccepted, map[string]any{"status": res.Run.Status, "version": res.Run.Version, "position": res.Position})
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
			writeError(w, fmt.Errorf("%w: from must be a positive line number, got %q", ErrBadRequest, v))
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
type EventView struct {
	Version  int64           `json:"version"`
	Position int64           `json:"position"`
	Type     string          `json:"type"`
	Time     time.Time       `json:"time"`
	Actor    string          `json:"actor"`
	Data     json.RawMessage `json:"data"`
}

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
