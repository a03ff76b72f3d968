// Signing in and out.

package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/piperun/piperun/command"
	"github.com/piperun/piperun/handlers/request"
)

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
	if request.ActorFrom(r.Context()).Name != "" {
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
	actor, err := s.Auth.Authenticate(r.Context(), token)
	switch {
	case errors.Is(err, request.ErrUnauthorized):
		p.Error = "That API token is not valid."
		s.showLogin(w, r, http.StatusUnauthorized, p)
		return
	case err != nil:
		s.fail(w, r, request.StatusFor(err), err)
		return
	case p.Username != "" && p.Username != actor.Name:
		p.Error = "That API token does not belong to user " + p.Username + "."
		s.showLogin(w, r, http.StatusUnauthorized, p)
		return
	}
	sealed, ttl, err := s.newSession(actor, command.HashToken(token))
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
	if !ok || request.ActorFrom(r.Context()).Name == "" {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	pos, err := s.Svc.EndSession(r.Context(), sess.User, sess.ID, time.Unix(sess.Expires, 0))
	if err != nil {
		s.fail(w, r, request.StatusFor(err), fmt.Errorf("sign out: %w", err))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if err := s.Read.WaitFor(ctx, pos); err != nil {
		s.Logger.Warn("sign out: the read models are late; the session ends on this replica when they catch up", "err", err)
	}
	s.clearCookie(w, r, sessionCookie)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
