package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/piperun/piperun/command"
	"github.com/piperun/piperun/eventstore/memory"
	"github.com/piperun/piperun/handlers/api"
	"github.com/piperun/piperun/handlers/request"
	"github.com/piperun/piperun/projections"
)

// tokenServer is the API over a memory store with its projector running,
// and the tokens of root (an administrator), alice and bob.
type tokenServer struct {
	url    string
	tokens map[string]string
}

func startTokenServer(t *testing.T) *tokenServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	store := memory.New()
	svc := command.New(store)
	read, err := projections.Open(ctx, filepath.Join(t.TempDir(), "read.db"))
	if err != nil {
		t.Fatal(err)
	}
	ts := &tokenServer{tokens: map[string]string{}}
	for _, u := range []struct {
		name  string
		admin bool
	}{{"root", true}, {"alice", false}, {"bob", false}} {
		tok, err := svc.CreateUser(ctx, u.name, u.admin, "system:test")
		if err != nil {
			t.Fatal(err)
		}
		ts.tokens[u.name] = tok
	}
	done := make(chan error, 1)
	go func() { done <- read.Run(ctx, store, 5*time.Millisecond) }()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	router, err := (&api.Server{Svc: svc, Read: read, ParseConfig: parseConfig(t.TempDir()),
		Auth:      &request.Authenticator{Read: read, Store: store},
		Positions: &request.Positions{Read: read, Store: store, Wait: 10 * time.Second, Logger: quiet},
		Logger:    quiet}).Router()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(router)
	t.Cleanup(func() {
		srv.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("projector: %v", err)
		}
		read.Close()
	})
	ts.url = srv.URL
	return ts
}

// call sends a request with a bearer token and returns the status and the
// decoded JSON body.
func (ts *tokenServer) call(t *testing.T, method, path, token string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, ts.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	// An administrator's revocation must hold when it is answered, even
	// when the caller asks not to wait.
	req.Header.Set("Prefer", "respond-async")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("%s %s: HTTP %d with a body that is not JSON: %v", method, path, resp.StatusCode, err)
	}
	return resp.StatusCode, body
}

func (ts *tokenServer) whoami(t *testing.T, token string) int {
	t.Helper()
	code, _ := ts.call(t, http.MethodGet, "/api/v1/whoami", token)
	return code
}

// TestRevokedTokenRefusedAtOnce: a token used a moment ago (so held in the
// token cache) is refused by the very next request after its revocation.
func TestRevokedTokenRefusedAtOnce(t *testing.T) {
	ts := startTokenServer(t)
	for range 2 {
		if code := ts.whoami(t, ts.tokens["alice"]); code != http.StatusOK {
			t.Fatalf("alice before the revocation: HTTP %d", code)
		}
	}
	code, body := ts.call(t, http.MethodPost, "/api/v1/users/alice/revoke", ts.tokens["root"])
	if code != http.StatusOK || body["revoked"] != true {
		t.Fatalf("revoke: HTTP %d %v", code, body)
	}
	if code := ts.whoami(t, ts.tokens["alice"]); code != http.StatusUnauthorized {
		t.Fatalf("alice's cached token right after the revocation: HTTP %d, want 401", code)
	}
	if code := ts.whoami(t, ts.tokens["bob"]); code != http.StatusOK {
		t.Errorf("bob after alice's revocation: HTTP %d", code)
	}
	if code, body := ts.call(t, http.MethodPost, "/api/v1/users/alice/revoke", ts.tokens["root"]); code != http.StatusConflict {
		t.Errorf("revoking again: HTTP %d %v, want 409", code, body)
	}
	if code, body := ts.call(t, http.MethodPost, "/api/v1/users/nobody/revoke", ts.tokens["root"]); code != http.StatusNotFound {
		t.Errorf("revoking an unknown user: HTTP %d %v, want 404", code, body)
	}
	// Rotation gives a revoked user a token again.
	code, body = ts.call(t, http.MethodPost, "/api/v1/users/alice/rotate", ts.tokens["root"])
	tok, _ := body["token"].(string)
	if code != http.StatusOK || tok == "" {
		t.Fatalf("rotate after revoke: HTTP %d %v", code, body)
	}
	if code := ts.whoami(t, tok); code != http.StatusOK {
		t.Errorf("alice's new token: HTTP %d", code)
	}
}

// TestRotatedTokenReplaced: after a rotation the old (cached) token is
// refused at once and the new one works.
func TestRotatedTokenReplaced(t *testing.T) {
	ts := startTokenServer(t)
	old := ts.tokens["bob"]
	if code := ts.whoami(t, old); code != http.StatusOK {
		t.Fatalf("bob before the rotation: HTTP %d", code)
	}
	code, body := ts.call(t, http.MethodPost, "/api/v1/users/bob/rotate", ts.tokens["root"])
	tok, _ := body["token"].(string)
	if code != http.StatusOK || !strings.HasPrefix(tok, "prt_") || tok == old || body["user"] != "bob" {
		t.Fatalf("rotate: HTTP %d %v", code, body)
	}
	if code := ts.whoami(t, old); code != http.StatusUnauthorized {
		t.Errorf("bob's old token after the rotation: HTTP %d, want 401", code)
	}
	if code := ts.whoami(t, tok); code != http.StatusOK {
		t.Errorf("bob's new token: HTTP %d", code)
	}
	// An administrator may rotate their own token, and keeps working with
	// the new one.
	code, body = ts.call(t, http.MethodPost, "/api/v1/users/root/rotate", ts.tokens["root"])
	rootTok, _ := body["token"].(string)
	if code != http.StatusOK || ts.whoami(t, rootTok) != http.StatusOK || ts.whoami(t, ts.tokens["root"]) != http.StatusUnauthorized {
		t.Errorf("root rotating their own token: HTTP %d %v", code, body)
	}
}

// TestOnlyAdministratorsManageTokens: revoke and rotate answer 403 to any
// other user, their own token included, and change nothing.
func TestOnlyAdministratorsManageTokens(t *testing.T) {
	ts := startTokenServer(t)
	for _, c := range []struct{ path, user string }{
		{"/api/v1/users/bob/revoke", "alice"},
		{"/api/v1/users/alice/revoke", "alice"},
		{"/api/v1/users/bob/rotate", "alice"},
		{"/api/v1/users/alice/rotate", "alice"},
		{"/api/v1/users/root/revoke", "bob"},
	} {
		code, body := ts.call(t, http.MethodPost, c.path, ts.tokens[c.user])
		if code != http.StatusForbidden || body["error"] == nil {
			t.Errorf("%s as %s: HTTP %d %v, want 403", c.path, c.user, code, body)
		}
		if _, ok := body["token"]; ok {
			t.Errorf("%s as %s answered a token", c.path, c.user)
		}
	}
	for _, u := range []string{"alice", "bob", "root"} {
		if code := ts.whoami(t, ts.tokens[u]); code != http.StatusOK {
			t.Errorf("%s after the refused attempts: HTTP %d", u, code)
		}
	}
	if code, _ := ts.call(t, http.MethodPost, "/api/v1/users/bob/revoke", "prt_nonsense"); code != http.StatusUnauthorized {
		t.Errorf("revoke without a valid token: HTTP %d, want 401", code)
	}
}
