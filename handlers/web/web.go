package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/piperun/piperun/app"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/handlers/api"
	"github.com/piperun/piperun/projections"
	"github.com/piperun/piperun/runconfig"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Server serves the web pages. It shares the JSON API's dependencies and
// token check; the pages' scripts call that API with the session cookie.
type Server struct {
	// API is the JSON API the pages sit beside.
	API *api.Server
	// Key seals session cookies (at least 32 bytes; see LoadKey).
	Key []byte
	// Logger receives errors that cannot be shown to the user.
	Logger *slog.Logger
	// Heartbeat is how often an idle live stream re-reads its run and sends
	// a keep-alive (default 15s).
	Heartbeat time.Duration
	// SessionIdle ends a session unused for this long (default
	// DefaultSessionIdle); sessions end after 7 days whatever their use.
	SessionIdle time.Duration
	// Now is the clock of the session limits (default time.Now).
	Now func() time.Time
	// MaxStreams and MaxStreamsPerUser bound the open live streams, in all
	// and per user (defaults DefaultMaxStreams, DefaultMaxStreamsPerUser);
	// past them a stream is refused with 429.
	MaxStreams, MaxStreamsPerUser int
	// StreamWriteTimeout bounds the writing of each event of a live stream
	// (default 2 minutes).
	StreamWriteTimeout time.Duration

	once      sync.Once
	initErr   error
	seal      *sealer
	pages     map[string]*template.Template
	assets    map[string]string // static file name -> URL with a content version
	done      chan struct{}
	closeOnce sync.Once
	streams   streamCounts
	feeds     feeds
}

// pageNames are the templates under templates/, each rendered inside
// layout.html.
var pageNames = []string{"login", "logout", "runs", "run", "history", "error"}

func (s *Server) init() error {
	s.once.Do(func() {
		if s.Logger == nil {
			s.Logger = slog.Default()
		}
		if s.Heartbeat <= 0 {
			s.Heartbeat = 15 * time.Second
		}
		if s.MaxStreams <= 0 {
			s.MaxStreams = DefaultMaxStreams
		}
		if s.MaxStreamsPerUser <= 0 {
			s.MaxStreamsPerUser = DefaultMaxStreamsPerUser
		}
		if s.StreamWriteTimeout <= 0 {
			s.StreamWriteTimeout = defaultStreamWriteTimeout
		}
		s.done = make(chan struct{})
		if s.API == nil || s.API.Read == nil || s.API.Svc == nil || s.API.ParseConfig == nil {
			s.initErr = errors.New("web pages need the API server with its Svc, Read and ParseConfig")
			return
		}
		s.feeds = feeds{read: s.API.Read, heartbeat: s.Heartbeat, log: s.Logger, byRun: map[string]*feed{}}
		if s.seal, s.initErr = newSealer(s.Key); s.initErr != nil {
			return
		}
		if s.assets, s.initErr = versionAssets(); s.initErr != nil {
			return
		}
		s.pages = make(map[string]*template.Template, len(pageNames))
		for _, name := range pageNames {
			t, err := template.New("layout.html").Funcs(s.funcs()).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
			if err != nil {
				s.initErr = fmt.Errorf("parse page template %s: %w", name, err)
				return
			}
			s.pages[name] = t
		}
	})
	return s.initErr
}

// versionAssets gives each static file a URL that changes with its
// content, so that browsers may cache it for long.
func versionAssets() (map[string]string, error) {
	out := map[string]string{}
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		name := strings.TrimPrefix(p, "static/")
		out[name] = "/static/" + name + "?v=" + hex.EncodeToString(sum[:6])
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read embedded static files: %w", err)
	}
	return out, nil
}

// Register adds the pages' routes to r, and the session middleware to
// every route of r (the API's included). It fails only on a programming
// or configuration error (bad key, unparsable template).
func (s *Server) Register(r *mux.Router) error {
	if err := s.init(); err != nil {
		return err
	}
	r.Use(s.sessions)
	r.Handle("/", s.page(s.runsPage)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/login", s.secured(http.HandlerFunc(s.loginPage))).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/login", s.secured(http.HandlerFunc(s.login))).Methods(http.MethodPost)
	r.Handle("/logout", s.page(s.logoutPage)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/logout", s.secured(http.HandlerFunc(s.logout))).Methods(http.MethodPost)
	r.Handle("/runs", s.page(s.createRun)).Methods(http.MethodPost)
	r.Handle("/runs/{name}", s.page(s.runPage)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/runs/{name}/history", s.page(s.historyPage)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/runs/{name}/events/stream", s.authed(s.stream)).Methods(http.MethodGet)
	r.Handle("/runs/{name}/config/validate", s.authed(s.validateConfig)).Methods(http.MethodPost)
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return fmt.Errorf("embedded static files: %w", err)
	}
	files := http.StripPrefix("/static/", http.FileServerFS(static))
	r.PathPrefix("/static/").Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if r.URL.Query().Get("v") != "" {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		files.ServeHTTP(w, r)
	})).Methods(http.MethodGet, http.MethodHead)
	return nil
}

// Close ends the live streams, so that a server shutdown need not wait for
// browsers to hang up. It is safe to call more than once.
func (s *Server) Close() {
	_ = s.init()
	s.closeOnce.Do(func() { close(s.done) })
}

// securityHeaders are sent with every page: no inline script or style may
// run, and the pages may not be framed.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

func (s *Server) secured(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w.Header())
		h.ServeHTTP(w, r)
	})
}

// page serves a page to a signed-in user and sends anyone else to the
// sign-in form, with a way back.
func (s *Server) page(h http.HandlerFunc) http.Handler {
	return s.secured(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if api.ActorFrom(r.Context()).Name == "" {
			if !safeMethod(r.Method) {
				s.fail(w, r, http.StatusUnauthorized, errors.New("your session has ended; sign in again"))
				return
			}
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if !s.awaitPosition(w, r) {
			return
		}
		h(w, r)
	}))
}

// awaitPosition holds a signed-in user's request until this replica's read
// models reach the position of the last command the pages sent (see
// api.AwaitPosition), and answers it with an error if they do not in time.
func (s *Server) awaitPosition(w http.ResponseWriter, r *http.Request) bool {
	if err := s.API.AwaitPosition(r); err != nil {
		s.fail(w, r, api.StatusFor(err), err)
		return false
	}
	return true
}

// authed serves the pages' own JSON and event-stream endpoints, which
// answer 401 rather than redirect.
func (s *Server) authed(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if api.ActorFrom(r.Context()).Name == "" {
			s.fail(w, r, http.StatusUnauthorized, fmt.Errorf("%w: sign in first", api.ErrUnauthorized))
			return
		}
		if !s.awaitPosition(w, r) {
			return
		}
		h(w, r)
	})
}

// base is what every page's layout needs.
type base struct {
	Title string
	Page  string
	User  domain.Actor
	CSRF  string
}

func (s *Server) base(r *http.Request, title, page string) base {
	b := base{Title: title, Page: page, User: api.ActorFrom(r.Context())}
	if sess, ok := sessionFrom(r.Context()); ok {
		b.CSRF = sess.CSRF
	}
	return b
}

// render executes a page into a buffer first, so that a template error
// gives a clean 500 rather than half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, code int, page string, data any) {
	t, ok := s.pages[page]
	if !ok {
		s.fail(w, r, http.StatusInternalServerError, fmt.Errorf("no page template %q", page))
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", data); err != nil {
		s.Logger.Error("render page", "page", page, "err", err)
		http.Error(w, "internal error: the page could not be rendered", http.StatusInternalServerError)
		return
	}
	securityHeaders(w.Header())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

type errorPage struct {
	base
	Code    int
	Message string
}

// fail answers with an error: JSON for the API and the pages' scripts, an
// error page otherwise.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, code int, err error) {
	msg := err.Error()
	if code == http.StatusInternalServerError {
		s.Logger.Error("web request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "internal error: " + msg
	}
	if errors.Is(err, api.ErrReadModelsBehind) {
		w.Header().Set("Retry-After", api.RetryAfterSeconds)
	}
	if wantsJSON(r) || s.pages == nil {
		writeJSON(w, code, map[string]string{"error": msg})
		return
	}
	s.render(w, r, code, "error", errorPage{base: s.base(r, http.StatusText(code), "error"), Code: code, Message: msg})
}

func wantsJSON(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, "/api/") || strings.Contains(r.Header.Get("Accept"), "application/json") ||
		r.Header.Get(CSRFHeader) != "" || strings.HasSuffix(r.URL.Path, "/events/stream")
}

// safeNext keeps a post-sign-in redirect on this site.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return "/"
	}
	return next
}

type loginPage struct {
	base
	Next     string
	Username string
	Error    string
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if api.ActorFrom(r.Context()).Name != "" {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	s.showLogin(w, r, http.StatusOK, loginPage{Next: next})
}

// showLogin renders the sign-in form with a fresh form token.
func (s *Server) showLogin(w http.ResponseWriter, r *http.Request, code int, p loginPage) {
	token, err := randomToken()
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	sealed, err := s.seal.seal(loginCookie, loginState{CSRF: token, Expires: s.now().Add(loginTTL).Unix()})
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	s.setCookie(w, r, loginCookie, sealed, loginTTL)
	p.base = s.base(r, "Sign in", "login")
	p.CSRF = token
	s.render(w, r, code, "login", p)
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.fail(w, r, http.StatusBadRequest, fmt.Errorf("read the sign-in form: %w", err))
		return
	}
	p := loginPage{Next: safeNext(r.PostFormValue("next")), Username: strings.TrimSpace(r.PostFormValue("username"))}
	var st loginState
	c, err := r.Cookie(loginCookie)
	if err == nil {
		err = s.seal.open(loginCookie, c.Value, &st)
	}
	if err != nil || s.now().Unix() >= st.Expires || checkCSRF(w, r, st.CSRF) != nil {
		p.Error = "The sign-in form expired or was not sent from this site. Please try again."
		s.showLogin(w, r, http.StatusForbidden, p)
		return
	}
	token := strings.TrimSpace(r.PostFormValue("token"))
	actor, err := s.API.Authenticate(r.Context(), token)
	switch {
	case errors.Is(err, api.ErrUnauthorized):
		p.Error = "That API token is not valid."
		s.showLogin(w, r, http.StatusUnauthorized, p)
		return
	case err != nil:
		s.fail(w, r, api.StatusFor(err), err)
		return
	case p.Username != "" && p.Username != actor.Name:
		p.Error = "That API token does not belong to user " + p.Username + "."
		s.showLogin(w, r, http.StatusUnauthorized, p)
		return
	}
	sealed, ttl, err := s.newSession(actor, app.HashToken(token))
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	s.setCookie(w, r, sessionCookie, sealed, ttl)
	s.clearCookie(w, r, loginCookie)
	http.Redirect(w, r, p.Next, http.StatusSeeOther)
}

func (s *Server) logoutPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "logout", s.base(r, "Sign out", "logout"))
}

// logout ends the session: it records SessionEnded, so that a copy of the
// cookie is refused from then on (here at once: the answer waits for the
// read models; on other replicas as soon as theirs reach the record), and
// clears the cookie. A request without a session (or with a wrong CSRF
// token, which the middleware refuses first) changes nothing.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	sess, ok := sessionFrom(r.Context())
	if !ok || api.ActorFrom(r.Context()).Name == "" {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	pos, err := s.API.Svc.EndSession(r.Context(), sess.User, sess.ID, time.Unix(sess.Expires, 0))
	if err != nil {
		s.fail(w, r, api.StatusFor(err), fmt.Errorf("sign out: %w", err))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if err := s.API.Read.WaitFor(ctx, pos); err != nil {
		s.Logger.Warn("sign out: the read models are late; the session ends on this replica when they catch up", "err", err)
	}
	s.clearCookie(w, r, sessionCookie)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

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
	runs, err := s.API.Read.ListRuns(r.Context())
	if err != nil {
		s.fail(w, r, api.StatusFor(err), err)
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
	cfg, err := s.API.ParseConfig([]byte(f.Config))
	if err != nil {
		f.ConfigProblems = problemsOf(err)
	}
	if f.NameError != "" || f.DescError != "" || len(f.ConfigProblems) > 0 {
		s.showRuns(w, r, http.StatusBadRequest, f)
		return
	}
	res, err := s.API.Svc.CreateRun(r.Context(), domain.CreateRun{Name: f.Name, Description: f.Description, Config: cfg, Actor: api.ActorFrom(r.Context())})
	if err != nil {
		code := api.StatusFor(err)
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
	api.SetPosition(w, r, pos)
	d := s.API.ReadYourWrites
	if d <= 0 {
		d = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(r.Context(), d)
	defer cancel()
	_ = s.API.Read.WaitFor(ctx, pos)
}

func normaliseNewlines(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

// userMessage drops the sentinel's name from a domain error ("invalid:
// run name is empty" reads "run name is empty").
func userMessage(err error) string {
	msg := err.Error()
	for _, sentinel := range []error{domain.ErrInvalid, domain.ErrForbidden, domain.ErrNotFound, domain.ErrExists,
		domain.ErrRunBusy, domain.ErrNotRestorable, domain.ErrConflict, domain.ErrNotRunning, api.ErrBadRequest} {
		if errors.Is(err, sentinel) {
			if rest, ok := strings.CutPrefix(msg, sentinel.Error()+": "); ok {
				return rest
			}
		}
	}
	return msg
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
	d, err := s.API.Read.GetRun(r.Context(), name)
	if err != nil {
		s.fail(w, r, api.StatusFor(err), err)
		return
	}
	a := api.ActorFrom(r.Context())
	s.render(w, r, http.StatusOK, "run", runPage{
		base: s.base(r, d.Name, "run"), Run: d, MayChange: mayChange(a, d.Owner),
		Busy: busy(d.Status), ProcessVerb: processVerb(d.Status),
		Cancellable: d.Status == domain.StatusQueued || d.Status == domain.StatusRunning,
	})
}

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
	st, err := s.API.Read.GetRunState(r.Context(), mux.Vars(r)["name"])
	if err != nil {
		s.fail(w, r, api.StatusFor(err), err)
		return
	}
	cfg, err := s.API.ParseConfig([]byte(normaliseNewlines(req.Config)))
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

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// decodeJSON reads a small JSON body strictly.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxFormBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: malformed JSON body: %v", api.ErrBadRequest, err)
	}
	return nil
}
