package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/piperun/piperun/command"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/handlers/request"
	"github.com/piperun/piperun/projections"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Server serves the web pages. The pages' scripts call the JSON API
// (handlers/api) with the session cookie; the pages are given the same
// Auth and Positions as that API, so that a process has one token cache
// and one catch-up of its read models at a time. Svc, Read, ParseConfig,
// Auth, Positions and Key are required.
type Server struct {
	// Svc runs the commands the pages send (a new run, sign-out).
	Svc *command.Service
	// Read holds the runs, users and sessions the pages show and check.
	Read *projections.Store
	// ParseConfig checks a configuration's text (including that its input
	// paths stay inside the images root) and returns it in domain form.
	ParseConfig func(text []byte) (domain.RunConfig, error)
	// Auth resolves the API token given on the sign-in form.
	Auth *request.Authenticator
	// Positions holds a page until the read models reach the position of
	// the last command the pages sent, and a command until they show it.
	Positions *request.Positions
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
		if s.Svc == nil || s.Read == nil || s.ParseConfig == nil || s.Auth == nil || s.Positions == nil {
			s.initErr = errors.New("web pages need their Svc, Read, ParseConfig, Auth and Positions")
			return
		}
		s.feeds = feeds{read: s.Read, heartbeat: s.Heartbeat, log: s.Logger, byRun: map[string]*feed{}}
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
