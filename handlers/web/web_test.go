package web

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/piperun/piperun/command"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/eventstore/memory"
	"github.com/piperun/piperun/handlers/api"
	"github.com/piperun/piperun/handlers/request"
	"github.com/piperun/piperun/projections"
	"github.com/piperun/piperun/runconfig"
)

// site is the pages and the API over an in-memory store, with users alice
// and bob (not administrators) and root (administrator).
type site struct {
	t      *testing.T
	srv    *httptest.Server
	svc    *command.Service
	read   *projections.Store
	tokens map[string]string
	// pages are the site's pages; skew moves their session clock ahead.
	pages *Server
	skew  atomic.Int64
}

func configFor(epochs ...string) string {
	var img, sel, noise strings.Builder
	for _, e := range epochs {
		fmt.Fprintf(&img, "  - data/%s.fits\n", e)
		fmt.Fprintf(&sel, "  - data/%s.selavy.components.txt\n", e)
		fmt.Fprintf(&noise, "  - data/%s.noiseMap.fits\n", e)
	}
	return "inputs:\n  image:\n" + img.String() + "  selavy:\n" + sel.String() + "  noise:\n" + noise.String() +
		"source_association:\n  method: basic\n  radius: 10.0\n"
}

func parseConfig(text []byte) (domain.RunConfig, error) {
	c, err := runconfig.Parse(text)
	if err != nil {
		return domain.RunConfig{}, fmt.Errorf("%w: configuration: %w", domain.ErrInvalid, err)
	}
	return c.Domain(), nil
}

// newSite starts the site; opts adjust the pages' server before it
// serves.
func newSite(t *testing.T, opts ...func(*Server)) *site {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	store := memory.New()
	svc := command.New(store)
	read, err := projections.Open(ctx, filepath.Join(t.TempDir(), "read.db"))
	if err != nil {
		t.Fatal(err)
	}
	s := &site{t: t, svc: svc, read: read, tokens: map[string]string{}}
	for _, u := range []struct {
		name  string
		admin bool
	}{{"alice", false}, {"bob", false}, {"root", true}} {
		tok, err := svc.CreateUser(ctx, u.name, u.admin, "test")
		if err != nil {
			t.Fatal(err)
		}
		s.tokens[u.name] = tok
	}
	projDone := make(chan struct{})
	go func() {
		defer close(projDone)
		_ = read.Run(ctx, store, 5*time.Millisecond)
	}()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	// One Authenticator and one Positions for the API and the pages, as
	// the composition root (package wiring) builds them.
	auth := &request.Authenticator{Read: read, Store: store}
	positions := &request.Positions{Read: read, Store: store, Logger: quiet}
	apiServer := &api.Server{Svc: svc, Read: read, ParseConfig: parseConfig, Auth: auth, Positions: positions, Logger: quiet}
	pages := &Server{Svc: svc, Read: read, ParseConfig: parseConfig, Auth: auth, Positions: positions,
		Key: []byte("0123456789abcdef0123456789abcdef"), Logger: quiet, Heartbeat: 50 * time.Millisecond,
		Now: func() time.Time { return time.Now().Add(time.Duration(s.skew.Load())) }}
	s.pages = pages
	for _, o := range opts {
		o(pages)
	}
	router := mux.NewRouter()
	if err := apiServer.Register(router); err != nil {
		t.Fatal(err)
	}
	if err := pages.Register(router); err != nil {
		t.Fatal(err)
	}
	s.srv = httptest.NewServer(router)
	t.Cleanup(func() {
		pages.Close()
		s.srv.Close()
		cancel()
		<-projDone
		read.Close()
	})
	return s
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so that tests see them.
type browser struct {
	t    *testing.T
	site *site
	c    *http.Client
	csrf string
}

func (s *site) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: s.t, site: s, c: &http.Client{
		Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

var (
	csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	csrfMeta  = regexp.MustCompile(`<meta name="csrf-token" content="([^"]*)">`)
)

func (b *browser) do(method, path string, body io.Reader, header map[string]string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(method, b.site.srv.URL+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return res, string(raw)
}

func (b *browser) get(path string) (*http.Response, string) {
	b.t.Helper()
	return b.do(http.MethodGet, path, nil, nil)
}

func (b *browser) postForm(path string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	return b.do(http.MethodPost, path, strings.NewReader(form.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
}

// loginForm fetches the sign-in form and returns its CSRF token.
func (b *browser) loginForm() string {
	b.t.Helper()
	res, body := b.get("/login")
	if res.StatusCode != http.StatusOK {
		b.t.Fatalf("GET /login: %d", res.StatusCode)
	}
	m := csrfInput.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatal("sign-in form has no CSRF field")
	}
	return m[1]
}

// signIn signs in as user and remembers the session's CSRF token.
func (b *browser) signIn(user string) {
	b.t.Helper()
	res, body := b.postForm("/login", url.Values{"csrf": {b.loginForm()}, "token": {b.site.tokens[user]}, "next": {"/"}})
	if res.StatusCode != http.StatusSeeOther {
		b.t.Fatalf("sign in as %s: %d %s", user, res.StatusCode, body)
	}
	res, body = b.get("/")
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `id="current-user">`+user) {
		b.t.Fatalf("after signing in as %s, / answered %d", user, res.StatusCode)
	}
	b.csrf = csrfMeta.FindStringSubmatch(body)[1]
}

// api calls the JSON API with the session cookie and, if csrf is set, the
// CSRF header.
func (b *browser) api(method, path, csrf string, body any) (int, map[string]any) {
	b.t.Helper()
	var rd io.Reader
	h := map[string]string{"Accept": "application/json"}
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = strings.NewReader(string(raw))
		h["Content-Type"] = "application/json"
	}
	if csrf != "" {
		h[CSRFHeader] = csrf
	}
	res, raw := b.do(method, path, rd, h)
	var out map[string]any
	_ = json.Unmarshal([]byte(raw), &out)
	return res.StatusCode, out
}

// createRun creates a run owned by user.
func (s *site) createRun(user, name, description string, epochs ...string) {
	s.t.Helper()
	cfg, err := parseConfig([]byte(configFor(epochs...)))
	if err != nil {
		s.t.Fatal(err)
	}
	// Seed the event directly: these tests are about the pages, not about
	// the creation decision.
	res, err := s.svc.ExecRun(context.Background(), name, user, func(*domain.Run) ([]domain.Event, error) {
		return []domain.Event{domain.RunCreated{Name: name, Description: description, Owner: user, Config: cfg}}, nil
	})
	if err != nil {
		s.t.Fatal(err)
	}
	s.settle(res.Position)
}

func (s *site) settle(pos int64) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.read.WaitFor(ctx, pos); err != nil {
		s.t.Fatal(err)
	}
}

func TestLoadKeyCreatesOnceAndRejectsGarbage(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, KeyFile)
	k1, err := LoadKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != 32 {
		t.Fatalf("new key has %d bytes, want 32", len(k1))
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
	}
	k2, err := LoadKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(k1) != string(k2) {
		t.Error("loading the key again gave another key: sessions would not survive a restart")
	}
	for _, bad := range []string{"not hex\n", "abcd\n"} {
		p := filepath.Join(dir, "bad")
		if err := os.WriteFile(p, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadKey(p); err == nil {
			t.Errorf("LoadKey accepted %q", bad)
		}
	}
}

func TestSealedCookiesResistTampering(t *testing.T) {
	s1, err := newSealer([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	s2, err := newSealer([]byte("fedcba9876543210fedcba9876543210"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newSealer([]byte("short")); err == nil {
		t.Error("a 5-byte key was accepted")
	}
	in := session{User: "alice", TokenHash: "h", CSRF: "c", Expires: 42}
	v, err := s1.seal(sessionCookie, in)
	if err != nil {
		t.Fatal(err)
	}
	var out session
	if err := s1.open(sessionCookie, v, &out); err != nil || out != in {
		t.Fatalf("round trip: %+v, %v", out, err)
	}
	flipped := []byte(v)
	flipped[len(flipped)/2] ^= 1
	tests := []struct {
		name   string
		sealer *sealer
		cookie string
		value  string
	}{
		{"one character changed", s1, sessionCookie, string(flipped)},
		{"another key", s2, sessionCookie, v},
		{"another cookie's name", s1, loginCookie, v},
		{"not base64", s1, sessionCookie, "%%%"},
		{"empty", s1, sessionCookie, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got session
			if err := tt.sealer.open(tt.cookie, tt.value, &got); err == nil {
				t.Errorf("opened: %+v", got)
			}
		})
	}
}

func TestSafeNext(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "/"},
		{"/runs/a?x=1", "/runs/a?x=1"},
		{"//evil.example/x", "/"},
		{"/\\evil.example", "/"},
		{"https://evil.example/", "/"},
		{"runs", "/"},
		{"/ok\r\nSet-Cookie: x", "/"},
	}
	for _, tt := range tests {
		if got := safeNext(tt.in); got != tt.want {
			t.Errorf("safeNext(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSignIn(t *testing.T) {
	s := newSite(t)

	t.Run("pages send strangers to the sign-in form", func(t *testing.T) {
		b := s.browser()
		res, _ := b.get("/runs/x?y=1")
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login?next=%2Fruns%2Fx%3Fy%3D1" {
			t.Fatalf("got %d to %q", res.StatusCode, res.Header.Get("Location"))
		}
		if code, _ := b.api(http.MethodGet, "/api/v1/runs", "", nil); code != http.StatusUnauthorized {
			t.Errorf("API without a session: %d, want 401", code)
		}
	})

	t.Run("wrong token, wrong user, missing form token", func(t *testing.T) {
		tests := []struct {
			name     string
			form     func(b *browser) url.Values
			wantCode int
			wantText string
		}{
			{"wrong token", func(b *browser) url.Values {
				return url.Values{"csrf": {b.loginForm()}, "token": {"prt_nope"}}
			}, http.StatusUnauthorized, "That API token is not valid."},
			{"token of another user", func(b *browser) url.Values {
				return url.Values{"csrf": {b.loginForm()}, "username": {"bob"}, "token": {s.tokens["alice"]}}
			}, http.StatusUnauthorized, "does not belong to user bob"},
			{"no form token", func(b *browser) url.Values {
				b.loginForm()
				return url.Values{"token": {s.tokens["alice"]}}
			}, http.StatusForbidden, "expired or was not sent from this site"},
			{"form token without its cookie", func(b *browser) url.Values {
				return url.Values{"csrf": {s.browser().loginForm()}, "token": {s.tokens["alice"]}}
			}, http.StatusForbidden, "expired or was not sent from this site"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				b := s.browser()
				res, body := b.postForm("/login", tt.form(b))
				if res.StatusCode != tt.wantCode || !strings.Contains(body, tt.wantText) {
					t.Fatalf("got %d, want %d with %q", res.StatusCode, tt.wantCode, tt.wantText)
				}
				if strings.Contains(body, s.tokens["alice"]) {
					t.Error("the page echoes the token")
				}
				if r2, _ := b.get("/"); r2.StatusCode != http.StatusSeeOther {
					t.Errorf("signed in anyway: / answered %d", r2.StatusCode)
				}
			})
		}
	})

	t.Run("session cookie attributes and sign out", func(t *testing.T) {
		b := s.browser()
		res, _ := b.postForm("/login", url.Values{"csrf": {b.loginForm()}, "username": {"alice"}, "token": {s.tokens["alice"]}, "next": {"//evil.example/"}})
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/" {
			t.Fatalf("got %d to %q", res.StatusCode, res.Header.Get("Location"))
		}
		var sc *http.Cookie
		for _, c := range res.Cookies() {
			if c.Name == sessionCookie {
				sc = c
			}
		}
		if sc == nil {
			t.Fatal("no session cookie")
		}
		if !sc.HttpOnly || sc.SameSite != http.SameSiteLaxMode || sc.Secure || sc.Path != "/" {
			t.Errorf("cookie HttpOnly=%v SameSite=%v Secure=%v Path=%q; want HttpOnly, Lax, not Secure over plain HTTP, /", sc.HttpOnly, sc.SameSite, sc.Secure, sc.Path)
		}
		if strings.Contains(sc.Value, "alice") || strings.Contains(sc.Value, command.HashToken(s.tokens["alice"])) {
			t.Error("the session cookie shows what it holds")
		}
		_, body := b.get("/")
		csrf := csrfMeta.FindStringSubmatch(body)[1]
		if res, _ := b.postForm("/logout", url.Values{}); res.StatusCode != http.StatusForbidden {
			t.Errorf("sign out without CSRF token: %d, want 403", res.StatusCode)
		}
		if res, _ := b.postForm("/logout", url.Values{"csrf": {csrf}}); res.StatusCode != http.StatusSeeOther {
			t.Errorf("sign out: %d, want 303", res.StatusCode)
		}
		if res, _ := b.get("/"); res.StatusCode != http.StatusSeeOther {
			t.Errorf("still signed in after signing out: %d", res.StatusCode)
		}
	})
}

func TestCSRF(t *testing.T) {
	s := newSite(t)
	b := s.browser()
	b.signIn("alice")
	cfg := configFor("epoch01", "epoch02")
	tests := []struct {
		name     string
		send     func(name string) int
		wantCode int
	}{
		{"API call with the cookie and no token", func(n string) int {
			code, _ := b.api(http.MethodPost, "/api/v1/runs", "", map[string]string{"name": n, "config": cfg})
			return code
		}, http.StatusForbidden},
		{"API call with the cookie and a wrong token", func(n string) int {
			code, _ := b.api(http.MethodPost, "/api/v1/runs", "x"+b.csrf, map[string]string{"name": n, "config": cfg})
			return code
		}, http.StatusForbidden},
		{"API call with the cookie and the token", func(n string) int {
			code, _ := b.api(http.MethodPost, "/api/v1/runs", b.csrf, map[string]string{"name": n, "config": cfg})
			return code
		}, http.StatusCreated},
		{"form without the token", func(n string) int {
			res, _ := b.postForm("/runs", url.Values{"name": {n}, "config": {cfg}})
			return res.StatusCode
		}, http.StatusForbidden},
		{"form with the token", func(n string) int {
			res, _ := b.postForm("/runs", url.Values{"name": {n}, "config": {cfg}, "csrf": {b.csrf}})
			return res.StatusCode
		}, http.StatusSeeOther},
		{"Bearer token, no cookie, no CSRF token", func(n string) int {
			raw, _ := json.Marshal(map[string]string{"name": n, "config": cfg})
			req, _ := http.NewRequest(http.MethodPost, s.srv.URL+"/api/v1/runs", strings.NewReader(string(raw)))
			req.Header.Set("Authorization", "Bearer "+s.tokens["alice"])
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			return res.StatusCode
		}, http.StatusCreated},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := fmt.Sprintf("csrf-%d", i)
			if got := tt.send(name); got != tt.wantCode {
				t.Fatalf("got %d, want %d", got, tt.wantCode)
			}
			_, err := s.read.GetRun(context.Background(), name)
			created := err == nil
			if want := tt.wantCode < 400; created != want {
				t.Errorf("run created = %v, want %v", created, want)
			}
		})
	}
	t.Run("reading needs no token", func(t *testing.T) {
		if code, _ := b.api(http.MethodGet, "/api/v1/runs", "", nil); code != http.StatusOK {
			t.Errorf("GET /api/v1/runs with the cookie: %d", code)
		}
	})
}

func TestUserStringsAreEscaped(t *testing.T) {
	s := newSite(t)
	const evil = `<script>alert(1)</script>`
	s.createRun("alice", "xss", evil+`"onmouseover="alert(2)`, "epoch01")
	b := s.browser()
	b.signIn("alice")
	for _, path := range []string{"/", "/runs/xss", "/runs/xss/history", "/runs/xss/history?version=1"} {
		t.Run(path, func(t *testing.T) {
			res, body := b.get(path)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("%d", res.StatusCode)
			}
			if strings.Contains(body, evil) || strings.Contains(body, `"onmouseover="`) {
				t.Error("the description is in the page unescaped")
			}
			if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") && !strings.Contains(body, `\u003cscript\u003ealert(1)\u003c/script\u003e`) {
				t.Error("the description is not in the page at all")
			}
			csp := res.Header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
				t.Errorf("Content-Security-Policy %q lets inline scripts run", csp)
			}
		})
	}
	t.Run("the page's data block is JSON with the description intact", func(t *testing.T) {
		_, body := b.get("/runs/xss")
		m := regexp.MustCompile(`(?s)<script type="application/json" id="run-data">(.*?)</script>`).FindStringSubmatch(body)
		if m == nil {
			t.Fatal("no run-data block")
		}
		var d projections.RunDetail
		if err := json.Unmarshal([]byte(m[1]), &d); err != nil {
			t.Fatalf("run-data is not JSON: %v", err)
		}
		if d.Description != evil+`"onmouseover="alert(2)` {
			t.Errorf("description %q", d.Description)
		}
	})
}

func TestRunPageShowsActionsToOwnerAndAdmin(t *testing.T) {
	s := newSite(t)
	s.createRun("alice", "mine", "", "epoch01")
	tests := []struct {
		user        string
		wantActions bool
	}{{"alice", true}, {"root", true}, {"bob", false}}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			b := s.browser()
			b.signIn(tt.user)
			res, body := b.get("/runs/mine")
			if res.StatusCode != http.StatusOK {
				t.Fatalf("%d", res.StatusCode)
			}
			for _, id := range []string{`id="process-button"`, `id="restore-button"`, `id="delete-button"`, `id="restore-dialog"`} {
				if got := strings.Contains(body, id); got != tt.wantActions {
					t.Errorf("%s in page = %v, want %v", id, got, tt.wantActions)
				}
			}
			if tt.wantActions {
				if !regexp.MustCompile(`id="restore-button"\s+hidden`).MatchString(body) {
					t.Error("Restore Run is shown for a run that has no backup")
				}
				if !strings.Contains(body, ">Process Run<") {
					t.Error("an Initialised run's button should read Process Run")
				}
			}
		})
	}
	t.Run("unknown run", func(t *testing.T) {
		b := s.browser()
		b.signIn("alice")
		if res, _ := b.get("/runs/nope"); res.StatusCode != http.StatusNotFound {
			t.Errorf("%d, want 404", res.StatusCode)
		}
	})
}

func TestNewRunForm(t *testing.T) {
	s := newSite(t)
	s.createRun("bob", "taken", "", "epoch01")
	b := s.browser()
	b.signIn("alice")
	tests := []struct {
		name     string
		form     url.Values
		wantCode int
		wantText []string
	}{
		{"bad name and config", url.Values{"name": {"a b"}, "config": {"inputs:\n  image: [a.fits]\nsource_association:\n  radius: -3\n"}},
			http.StatusBadRequest, []string{`id="run-name-error"`, `(space) at position 2`, `line 4`, `source_association.radius`, `must be greater than 0`}},
		{"name taken", url.Values{"name": {"taken"}, "config": {configFor("epoch01")}},
			http.StatusConflict, []string{`id="run-name-error"`, `already exists`}},
		{"created", url.Values{"name": {"fresh"}, "description": {"first try"}, "config": {strings.ReplaceAll(configFor("epoch01"), "\n", "\r\n")}},
			http.StatusSeeOther, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.form.Set("csrf", b.csrf)
			res, body := b.postForm("/runs", tt.form)
			if res.StatusCode != tt.wantCode {
				t.Fatalf("got %d, want %d", res.StatusCode, tt.wantCode)
			}
			for _, want := range tt.wantText {
				if !strings.Contains(body, want) {
					t.Errorf("page lacks %q", want)
				}
			}
			if tt.wantCode == http.StatusSeeOther {
				if loc := res.Header.Get("Location"); loc != "/runs/fresh" {
					t.Errorf("sent to %q", loc)
				}
				d, err := s.read.GetRun(context.Background(), "fresh")
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(d.Config, "\r") || d.Description != "first try" {
					t.Errorf("form line ends kept: config %q, description %q", d.Config, d.Description)
				}
			} else if !strings.Contains(body, `value="`+tt.form.Get("name")+`"`) {
				t.Error("the form lost what the user typed")
			}
		})
	}
}

func TestValidateConfig(t *testing.T) {
	s := newSite(t)
	s.createRun("alice", "v", "", "epoch01", "epoch02")
	b := s.browser()
	b.signIn("alice")
	path := "/runs/v/config/validate"
	code, out := b.api(http.MethodPost, path, b.csrf, map[string]string{"config": "inputs:\n  image: [a.fits]\n  bogus: 1\n"})
	if code != http.StatusOK || out["valid"] != false {
		t.Fatalf("invalid config: %d %v", code, out)
	}
	problems, _ := out["problems"].([]any)
	if len(problems) < 2 {
		t.Fatalf("problems %v, want one per problem", out["problems"])
	}
	if p, _ := problems[0].(map[string]any); p["line"] == nil || p["message"] == "" {
		t.Errorf("first problem %v lacks its line or message", p)
	}
	code, out = b.api(http.MethodPost, path, b.csrf, map[string]string{"config": configFor("epoch01", "epoch02", "epoch03")})
	if code != http.StatusOK || out["valid"] != true || !strings.Contains(fmt.Sprint(out["plan"]), "3 images") {
		t.Errorf("valid config: %d %v", code, out)
	}
	if code, _ := b.api(http.MethodPost, path, "", map[string]string{"config": "x"}); code != http.StatusForbidden {
		t.Errorf("without CSRF token: %d, want 403", code)
	}
}

func TestHistoryPage(t *testing.T) {
	s := newSite(t)
	s.createRun("alice", "h", "first", "epoch01")
	cfg, _ := parseConfig([]byte(configFor("epoch01", "epoch02")))
	res, err := s.svc.UpdateConfig(context.Background(), "h", cfg, domain.Actor{Name: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	s.settle(res.Position)
	b := s.browser()
	b.signIn("bob")
	tests := []struct {
		query    string
		wantCode int
		want     []string
	}{
		{"", http.StatusOK, []string{"Run created", "Configuration changed", `id="at-version">2<`, "data/epoch02.fits", "Audit passed"}},
		{"?version=1", http.StatusOK, []string{`id="at-version">1<`, `class="selected" id="v1"`}},
		{"?version=3", http.StatusBadRequest, []string{"from 1 to 2"}},
		{"?version=x", http.StatusBadRequest, nil},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			res, body := b.get("/runs/h/history" + tt.query)
			if res.StatusCode != tt.wantCode {
				t.Fatalf("got %d, want %d", res.StatusCode, tt.wantCode)
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			if tt.query == "?version=1" {
				at := body[strings.Index(body, `id="at-config"`):]
				at = at[:strings.Index(at, "</pre>")]
				if strings.Contains(at, "epoch02") {
					t.Error("version 1 shows the configuration of version 2")
				}
			}
		})
	}
	if res, _ := b.get("/runs/never/history"); res.StatusCode != http.StatusNotFound {
		t.Errorf("history of a run that never existed: %d, want 404", res.StatusCode)
	}
}

// sse reads Server-Sent Events.
type sse struct {
	t      *testing.T
	r      *bufio.Reader
	cancel func()
	run    *projections.RunDetail // as the events so far show it
}

func (b *browser) stream(path string) *sse {
	b.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.site.srv.URL+path, nil)
	c := *b.c
	c.Timeout = 0
	res, err := c.Do(req)
	if err != nil {
		cancel()
		b.t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		b.t.Fatalf("stream %s: %d %s", path, res.StatusCode, res.Header.Get("Content-Type"))
	}
	s := &sse{t: b.t, r: bufio.NewReader(res.Body), cancel: func() { cancel(); res.Body.Close() }}
	b.t.Cleanup(s.cancel)
	return s
}

// next returns the next event's name and data, skipping comments. A read
// that takes too long fails the test (the stream is closed to unblock it).
func (s *sse) next() (string, string) {
	s.t.Helper()
	timer := time.AfterFunc(10*time.Second, s.cancel)
	defer timer.Stop()
	var event, data string
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			s.t.Fatalf("read event stream: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "" && event != "":
			return event, data
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		}
	}
}

// nextRun returns the run as the stream shows it after its next "run" or
// "change" event: a change is applied to the run the stream showed before,
// as the page does.
func (s *sse) nextRun() projections.RunDetail {
	s.t.Helper()
	for {
		ev, data := s.next()
		switch ev {
		case "run":
			var d projections.RunDetail
			if err := json.Unmarshal([]byte(data), &d); err != nil {
				s.t.Fatal(err)
			}
			s.run = &d
			return d
		case "change":
			if s.run == nil {
				s.t.Fatal("a change before the whole run")
			}
			d, err := applyChange(*s.run, []byte(data))
			if err != nil {
				s.t.Fatal(err)
			}
			s.run = &d
			return d
		}
	}
}

// applyChange applies a "change" event to a run, as the page's script
// does: fields replace their values, splices edit their lists.
func applyChange(d projections.RunDetail, data []byte) (projections.RunDetail, error) {
	var c struct {
		Version  int64                      `json:"version"`
		Updated  json.RawMessage            `json:"updated"`
		Fields   map[string]json.RawMessage `json:"fields"`
		Images   *splice[json.RawMessage]   `json:"images"`
		Products *splice[json.RawMessage]   `json:"products"`
		Logs     *splice[json.RawMessage]   `json:"logs"`
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return d, err
	}
	raw, err := json.Marshal(d)
	if err != nil {
		return d, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return d, err
	}
	m["version"], _ = json.Marshal(c.Version)
	m["updated"] = c.Updated
	for k, v := range c.Fields {
		m[k] = v
	}
	for key, sp := range map[string]*splice[json.RawMessage]{"images": c.Images, "products": c.Products, "logs": c.Logs} {
		if sp == nil {
			continue
		}
		var list []json.RawMessage
		if err := json.Unmarshal(m[key], &list); err != nil {
			return d, err
		}
		if sp.At < 0 || sp.Remove < 0 || sp.At+sp.Remove > len(list) {
			return d, fmt.Errorf("%s: splice %d-%d of %d items", key, sp.At, sp.At+sp.Remove, len(list))
		}
		list = append(list[:sp.At:sp.At], append(sp.Insert, list[sp.At+sp.Remove:]...)...)
		m[key], _ = json.Marshal(list)
	}
	raw, _ = json.Marshal(m)
	var out projections.RunDetail
	err = json.Unmarshal(raw, &out)
	return out, err
}

func TestStreamFollowsTheRun(t *testing.T) {
	s := newSite(t)
	s.createRun("alice", "live", "", "epoch01")
	b := s.browser()
	b.signIn("bob")
	ctx := context.Background()

	st := b.stream("/runs/live/events/stream")
	if d := st.nextRun(); d.Name != "live" || d.Status != domain.StatusInitialised {
		t.Fatalf("first event: %+v", d)
	}
	// Changes to other runs are filtered out; this run's arrive with the
	// new state.
	s.createRun("alice", "other", "", "epoch01")
	res, err := s.svc.RequestProcessing(ctx, "live", true, false, domain.Actor{Name: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	logName := res.Run.Job.Log
	if d := st.nextRun(); d.Status != domain.StatusQueued || d.Version != res.Run.Version {
		t.Fatalf("after the request: %s at version %d, want Queued at %d", d.Status, d.Version, res.Run.Version)
	}

	// A stream with the log open sends its lines as they are written.
	logStream := b.stream("/runs/live/events/stream?log=" + url.QueryEscape(logName) + "&from=1")
	logStream.nextRun()
	w := s.svc.NewRunLog("live", logName, domain.LogRun, true)
	w.Infof("first")
	w.Debugf("second")
	if err := w.Flush(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 2 {
		ev, data := logStream.next()
		if ev != "log" {
			continue
		}
		var lb logBatch
		if err := json.Unmarshal([]byte(data), &lb); err != nil {
			t.Fatal(err)
		}
		if lb.Log != logName || lb.From != int64(len(got)+1) {
			t.Fatalf("log batch %+v after %d lines", lb, len(got))
		}
		got = append(got, lb.Lines...)
	}
	if !strings.HasSuffix(got[0], "INFO first") || !strings.HasSuffix(got[1], "DEBUG second") {
		t.Errorf("lines %q", got)
	}

	// Deleting the run ends the stream with "gone".
	gone := b.stream("/runs/other/events/stream")
	gone.nextRun()
	if _, err := s.svc.ExecRun(ctx, "other", "test", func(r *domain.Run) ([]domain.Event, error) {
		return []domain.Event{domain.DeletionRequested{}, domain.RunDeleted{}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	for {
		ev, _ := gone.next()
		if ev == "gone" {
			break
		}
	}

	t.Run("refused without a session or for an unknown run", func(t *testing.T) {
		if res, _ := s.browser().get("/runs/live/events/stream"); res.StatusCode != http.StatusUnauthorized {
			t.Errorf("without a session: %d", res.StatusCode)
		}
		if res, _ := b.get("/runs/nope/events/stream"); res.StatusCode != http.StatusNotFound {
			t.Errorf("unknown run: %d", res.StatusCode)
		}
	})
}

func TestCloseEndsStreams(t *testing.T) {
	s := newSite(t)
	s.createRun("alice", "c", "", "epoch01")
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	pages := &Server{Svc: s.svc, Read: s.read, ParseConfig: parseConfig,
		Auth:      &request.Authenticator{Read: s.read, Store: s.svc.Store},
		Positions: &request.Positions{Read: s.read, Store: s.svc.Store, Logger: quiet},
		Key:       make([]byte, 32), Logger: quiet}
	r := mux.NewRouter()
	if err := pages.Register(r); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/runs/c/events/stream", nil)
	req = req.WithContext(request.WithActor(req.Context(), domain.Actor{Name: "bob"}))
	done := make(chan struct{})
	rec := httptest.NewRecorder()
	go func() {
		defer close(done)
		r.ServeHTTP(rec, req)
	}()
	pages.Close()
	pages.Close() // twice is fine
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end on Close")
	}
}

func TestRegisterNeedsItsDependencies(t *testing.T) {
	tests := []struct {
		name  string
		pages *Server
	}{
		{"nothing but a key", &Server{Key: make([]byte, 32)}},
		{"no Auth", &Server{Svc: &command.Service{}, Read: &projections.Store{}, ParseConfig: parseConfig,
			Positions: &request.Positions{}, Key: make([]byte, 32)}},
		{"no Positions", &Server{Svc: &command.Service{}, Read: &projections.Store{}, ParseConfig: parseConfig,
			Auth: &request.Authenticator{}, Key: make([]byte, 32)}},
		{"short key", &Server{Svc: &command.Service{}, Read: &projections.Store{}, ParseConfig: parseConfig,
			Auth: &request.Authenticator{}, Positions: &request.Positions{}, Key: []byte("k")}},
	}
	for _, tt := range tests {
		if err := tt.pages.Register(mux.NewRouter()); err == nil {
			t.Errorf("%s: Register succeeded", tt.name)
		}
	}
}

// TestCancelJobFromThePage: the run page offers Cancel Job to the owner
// while the run has a job queued or running, and the page's API call
// (session cookie and CSRF header) cancels it; without the CSRF header it
// is refused.
func TestCancelJobFromThePage(t *testing.T) {
	s := newSite(t)
	s.createRun("alice", "long", "", "epoch01")
	b := s.browser()
	b.signIn("alice")
	hidden := regexp.MustCompile(`id="cancel-button"\s+hidden`)
	if _, body := b.get("/runs/long"); !strings.Contains(body, `id="cancel-button"`) || !hidden.MatchString(body) {
		t.Fatal("an Initialised run's page should have a hidden Cancel Job button")
	}
	res, err := s.svc.RequestProcessing(context.Background(), "long", false, false, domain.Actor{Name: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	s.settle(res.Position)
	_, body := b.get("/runs/long")
	if !strings.Contains(body, `id="cancel-button"`) || hidden.MatchString(body) || !strings.Contains(body, `id="cancel-dialog"`) {
		t.Fatal("a Queued run's page should show Cancel Job")
	}
	if code, _ := b.api(http.MethodPost, "/api/v1/runs/long/cancel", "", nil); code != http.StatusForbidden {
		t.Fatalf("cancel without the CSRF header: %d, want 403", code)
	}
	code, out := b.api(http.MethodPost, "/api/v1/runs/long/cancel", b.csrf, nil)
	if code != http.StatusOK || out["status"] != string(domain.StatusError) || out["reason"] != "cancelled by alice" {
		t.Fatalf("cancel from the page: %d %v", code, out)
	}
	if _, body := b.get("/runs/long"); !hidden.MatchString(body) {
		t.Fatal("a cancelled run's page still shows Cancel Job")
	}
}
