package api_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/piperun/piperun/command"
	"github.com/piperun/piperun/eventstore/memory"
	"github.com/piperun/piperun/handlers/api"
	"github.com/piperun/piperun/projections"
)

// TestTokensResolvedOnce checks that a token, once resolved, is not looked
// up in the read models again (they are closed here, so a lookup fails),
// while tokens never resolved still are: nothing unknown is let in.
func TestTokensResolvedOnce(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	svc := command.New(store)
	read, err := projections.Open(ctx, filepath.Join(t.TempDir(), "read.db"))
	if err != nil {
		t.Fatal(err)
	}
	alice, err := svc.CreateUser(ctx, "alice", false, "system:test")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := svc.CreateUser(ctx, "bob", false, "system:test")
	if err != nil {
		t.Fatal(err)
	}
	if err := read.CatchUp(ctx, store); err != nil {
		t.Fatal(err)
	}
	h := (&api.Server{Svc: svc, Read: read, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Router()
	whoami := func(token string) int {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/whoami", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	if code := whoami(alice); code != http.StatusOK {
		t.Fatalf("alice: HTTP %d", code)
	}
	if code := whoami(alice + "x"); code != http.StatusUnauthorized {
		t.Fatalf("a wrong token: HTTP %d, want 401", code)
	}
	if err := read.Close(); err != nil {
		t.Fatal(err)
	}
	if code := whoami(alice); code != http.StatusOK {
		t.Errorf("alice again, read models closed: HTTP %d, want 200 from the cache", code)
	}
	if code := whoami(bob); code == http.StatusOK {
		t.Errorf("bob, never resolved, read models closed: HTTP %d, want a failure", code)
	}
	if code := whoami(alice + "x"); code == http.StatusOK {
		t.Errorf("a wrong token, read models closed: HTTP 200")
	}
}

// TestPathsAreNotCleaned checks that paths with "." or ".." segments or
// doubled slashes are answered as they come, with a JSON 404 that changes
// nothing, not redirected to the cleaned path (which would name another
// resource: /runs/fz/../x/restore is not /runs/x/restore).
func TestPathsAreNotCleaned(t *testing.T) {
	fx := newFixture(t)
	for _, c := range []struct{ method, target string }{
		{http.MethodGet, "/api/v1/runs/.."},
		{http.MethodGet, "/api/v1/runs/./restore"},
		{http.MethodPost, "/api/v1/runs/./restore"},
		{http.MethodPost, "/api/v1/runs/../runs/fz/restore"},
		{http.MethodPost, "/api/v1/runs/x/../fz/restore"},
		{http.MethodDelete, "/api/v1/runs/fz/.."},
		{http.MethodGet, "/api/v1//runs"},
		{http.MethodGet, "/api/v1/runs/fz/products/../products"},
	} {
		o := fx.exercise(t, c.method+" "+c.target, c.method, c.target, fx.as("alice"), nil)
		checkSafe(t, c.method+" "+c.target, o)
		if o.code != http.StatusNotFound {
			t.Errorf("%s %s: HTTP %d, want 404: %s", c.method, c.target, o.code, o.body)
		}
	}
}
