package request_test

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/piperun/piperun/command"
	"github.com/piperun/piperun/eventstore/memory"
	"github.com/piperun/piperun/handlers/request"
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
	auth := &request.Authenticator{Read: read, Store: store}
	// whoami answers as GET /api/v1/whoami does: 200 for a token that
	// resolves, the error's status otherwise.
	whoami := func(token string) int {
		if _, err := auth.Authenticate(ctx, token); err != nil {
			return request.StatusFor(err)
		}
		return http.StatusOK
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
