package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/piperun/piperun/domain"
)

// copyCookies returns a new browser holding b's cookies: a copy of the
// session cookie, as someone who took it would hold.
func (b *browser) copyCookies() *browser {
	b.t.Helper()
	c := b.site.browser()
	u, _ := url.Parse(b.site.srv.URL)
	c.c.Jar.SetCookies(u, b.c.Jar.Cookies(u))
	c.csrf = b.csrf
	return c
}

// TestLogoutEndsTheSessionServerSide: a cookie copied before signing out
// is refused afterwards, by the pages (sent to sign in) and the API (401).
func TestLogoutEndsTheSessionServerSide(t *testing.T) {
	s := newSite(t)
	b := s.browser()
	b.signIn("alice")
	thief := b.copyCookies()
	if code, out := thief.api(http.MethodGet, "/api/v1/whoami", "", nil); code != http.StatusOK || out["name"] != "alice" {
		t.Fatalf("the copied cookie before signing out: HTTP %d %v", code, out)
	}
	if res, _ := b.postForm("/logout", url.Values{"csrf": {b.csrf}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out: %d, want 303", res.StatusCode)
	}
	if code, out := thief.api(http.MethodGet, "/api/v1/whoami", "", nil); code != http.StatusUnauthorized {
		t.Errorf("the copied cookie after signing out, API: HTTP %d %v, want 401", code, out)
	}
	if res, _ := thief.get("/"); res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/login") {
		t.Errorf("the copied cookie after signing out, page: HTTP %d to %q, want a redirect to sign in", res.StatusCode, res.Header.Get("Location"))
	}
	if code, _ := thief.api(http.MethodPost, "/api/v1/runs", thief.csrf, map[string]string{"name": "x", "config": configFor("epoch01")}); code != http.StatusUnauthorized {
		t.Errorf("the copied cookie after signing out, a change: HTTP %d, want 401", code)
	}
	// Another session of the same user goes on.
	other := s.browser()
	other.signIn("alice")
	if code, _ := other.api(http.MethodGet, "/api/v1/whoami", "", nil); code != http.StatusOK {
		t.Errorf("alice's other session: HTTP %d", code)
	}
}

// TestIdleSessionExpires: a session unused for the idle limit ends, while
// one in use goes on past it, up to the absolute limit.
func TestIdleSessionExpires(t *testing.T) {
	s := newSite(t)
	s.pages.SessionIdle = time.Hour
	idle := s.browser()
	idle.signIn("alice")
	busy := s.browser()
	busy.signIn("bob")
	for range 3 {
		s.skew.Add(int64(40 * time.Minute))
		if code, _ := busy.api(http.MethodGet, "/api/v1/whoami", "", nil); code != http.StatusOK {
			t.Fatalf("a session used every 40 minutes, %v after signing in: HTTP %d", time.Duration(s.skew.Load()), code)
		}
	}
	if code, _ := idle.api(http.MethodGet, "/api/v1/whoami", "", nil); code != http.StatusUnauthorized {
		t.Errorf("a session unused for 2 hours with a 1-hour idle limit: HTTP %d, want 401", code)
	}
	if res, _ := idle.get("/"); res.StatusCode != http.StatusSeeOther {
		t.Errorf("the idle session's page: HTTP %d, want a redirect to sign in", res.StatusCode)
	}
	// The absolute limit holds whatever the use.
	for s.skew.Load() < int64(sessionTTL) {
		s.skew.Add(int64(50 * time.Minute))
		code, _ := busy.api(http.MethodGet, "/api/v1/whoami", "", nil)
		if code != http.StatusOK {
			if time.Duration(s.skew.Load()) < sessionTTL {
				t.Fatalf("a busy session ended after %v, before the absolute limit", time.Duration(s.skew.Load()))
			}
			return
		}
	}
	s.skew.Add(int64(time.Minute))
	if code, _ := busy.api(http.MethodGet, "/api/v1/whoami", "", nil); code != http.StatusUnauthorized {
		t.Errorf("a busy session after the absolute limit: HTTP %d, want 401", code)
	}
}

// TestRevokedTokenEndsSessions: revoking or rotating a user's token ends
// the sessions signed in with it.
func TestRevokedTokenEndsSessions(t *testing.T) {
	s := newSite(t)
	alice := s.browser()
	alice.signIn("alice")
	bob := s.browser()
	bob.signIn("bob")
	ctx := context.Background()
	root := domain.Actor{Name: "root", Admin: true}
	pos, err := s.svc.RevokeToken(ctx, "alice", root)
	if err != nil {
		t.Fatal(err)
	}
	s.settle(pos)
	_, pos, err = s.svc.RotateToken(ctx, "bob", root)
	if err != nil {
		t.Fatal(err)
	}
	s.settle(pos)
	for name, b := range map[string]*browser{"revoked alice": alice, "rotated bob": bob} {
		if code, _ := b.api(http.MethodGet, "/api/v1/whoami", "", nil); code != http.StatusUnauthorized {
			t.Errorf("%s's session: HTTP %d, want 401", name, code)
		}
	}
}

// TestStoredControlCharactersCannotBreakThePage: a description stored
// before such characters were refused shows as text in its element.
func TestStoredControlCharactersCannotBreakThePage(t *testing.T) {
	s := newSite(t)
	s.createRun("alice", "legacy", "ok\r\x1b[2K\n</p><script>x()</script>\u202eevil\x07", "epoch01")
	b := s.browser()
	b.signIn("alice")
	for _, path := range []string{"/runs/legacy", "/"} {
		res, body := b.get(path)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: HTTP %d", path, res.StatusCode)
		}
		if strings.Contains(body, "<script>x()") || !strings.Contains(body, "&lt;/p&gt;&lt;script&gt;x()") {
			t.Errorf("%s shows the description's markup as markup", path)
		}
	}
}
