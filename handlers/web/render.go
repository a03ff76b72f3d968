// Rendering pages and errors: the per-page middleware, the base model, templates, and JSON in and out.

package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/handlers/request"
)

// page serves a page to a signed-in user and sends anyone else to the
// sign-in form, with a way back.
func (s *Server) page(h http.HandlerFunc) http.Handler {
	return s.secured(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if request.ActorFrom(r.Context()).Name == "" {
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
// request.Positions.Await), and answers it with an error if they do not in time.
func (s *Server) awaitPosition(w http.ResponseWriter, r *http.Request) bool {
	if err := s.Positions.Await(r); err != nil {
		s.fail(w, r, request.StatusFor(err), err)
		return false
	}
	return true
}

// authed serves the pages' own JSON and event-stream endpoints, which
// answer 401 rather than redirect.
func (s *Server) authed(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if request.ActorFrom(r.Context()).Name == "" {
			s.fail(w, r, http.StatusUnauthorized, fmt.Errorf("%w: sign in first", request.ErrUnauthorized))
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
	b := base{Title: title, Page: page, User: request.ActorFrom(r.Context())}
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
	if errors.Is(err, request.ErrReadModelsBehind) {
		w.Header().Set("Retry-After", request.RetryAfterSeconds)
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

// userMessage drops the sentinel's name from a domain error ("invalid:
// run name is empty" reads "run name is empty").
func userMessage(err error) string {
	msg := err.Error()
	for _, sentinel := range []error{domain.ErrInvalid, domain.ErrForbidden, domain.ErrNotFound, domain.ErrExists,
		domain.ErrRunBusy, domain.ErrNotRestorable, domain.ErrConflict, domain.ErrNotRunning, request.ErrBadRequest} {
		if errors.Is(err, sentinel) {
			if rest, ok := strings.CutPrefix(msg, sentinel.Error()+": "); ok {
				return rest
			}
		}
	}
	return msg
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
		return fmt.Errorf("%w: malformed JSON body: %v", request.ErrBadRequest, err)
	}
	return nil
}
