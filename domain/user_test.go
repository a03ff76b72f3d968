package domain_test

import (
	"strings"
	"testing"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/domain/domaintest"
)

func TestValidateUserName(t *testing.T) {
	tests := []struct {
		name  string
		user  string
		valid bool
	}{
		{"letters", "alice", true},
		{"all allowed characters", "Alice.B_c-09", true},
		{"64 characters", strings.Repeat("u", 64), true},
		{"65 characters", strings.Repeat("u", 65), false},
		{"empty", "", false},
		{"system prefix", "system:worker", false},
		{"colon", "ali:ce", false},
		{"space", "ali ce", false},
		{"slash", "ali/ce", false},
		{"at sign", "alice@example.org", false},
		{"non-ASCII letter", "élise", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := domain.ValidateUserName(tc.user)
			if tc.valid {
				domaintest.CheckErr(t, err, nil)
			} else {
				domaintest.CheckErr(t, err, domain.ErrInvalid)
			}
		})
	}
}

func TestCreateUser(t *testing.T) {
	tests := []struct {
		name      string
		user      string
		tokenHash string
		want      error
	}{
		{"valid", "alice", "sha256:token", nil},
		{"bad name", "al ice", "sha256:token", domain.ErrInvalid},
		{"no token hash", "alice", "", domain.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var u domain.User
			events, err := u.Create(tc.user, true, tc.tokenHash)
			domaintest.CheckErr(t, err, tc.want)
			if tc.want != nil {
				return
			}
			want := domain.UserCreated{Name: tc.user, Admin: true, TokenHash: tc.tokenHash}
			if got := domaintest.Single[domain.UserCreated](t, events); got != want {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

func TestCreateUserTwice(t *testing.T) {
	var u domain.User
	events, err := u.Create("alice", false, "sha256:token")
	domaintest.CheckErr(t, err, nil)
	u.Apply(domain.Recorded{Version: 1, Event: domaintest.Single[domain.UserCreated](t, events)})
	if want := (domain.User{Name: "alice", TokenHash: "sha256:token", Version: 1}); u != want {
		t.Fatalf("user %+v, want %+v", u, want)
	}
	_, err = u.Create("alice", true, "sha256:other")
	domaintest.CheckErr(t, err, domain.ErrExists)
}

func TestRevokeAndRotateToken(t *testing.T) {
	admin := domain.Actor{Name: "root", Admin: true}
	alice := func() domain.User {
		var u domain.User
		u.Apply(domain.Recorded{Version: 1, Event: domain.UserCreated{Name: "alice", TokenHash: "h1"}})
		return u
	}
	revoked := alice()
	revoked.Apply(domain.Recorded{Version: 2, Event: domain.UserTokenRevoked{}})
	if !revoked.Revoked() || revoked.TokenHash != "" || revoked.Version != 2 {
		t.Fatalf("after UserTokenRevoked: %+v", revoked)
	}
	tests := []struct {
		name   string
		user   domain.User
		actor  domain.Actor
		rotate string // new token hash; "" means revoke
		want   error
	}{
		{"admin revokes", alice(), admin, "", nil},
		{"admin rotates", alice(), admin, "h2", nil},
		{"admin rotates a revoked token", revoked, admin, "h2", nil},
		{"non-admin may not revoke", alice(), domain.Actor{Name: "alice"}, "", domain.ErrForbidden},
		{"non-admin may not rotate, even their own", alice(), domain.Actor{Name: "alice"}, "h2", domain.ErrForbidden},
		{"revoke an unknown user", domain.User{}, admin, "", domain.ErrNotFound},
		{"rotate an unknown user", domain.User{}, admin, "h2", domain.ErrNotFound},
		{"revoke twice", revoked, admin, "", domain.ErrConflict},
		{"rotate to the same hash", alice(), admin, "h1", domain.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := tc.user
			var events []domain.Event
			var err error
			if tc.rotate == "" {
				events, err = u.RevokeToken("alice", tc.actor)
			} else {
				events, err = u.RotateToken("alice", tc.rotate, tc.actor)
			}
			domaintest.CheckErr(t, err, tc.want)
			if tc.want != nil {
				return
			}
			u.Apply(domain.Recorded{Version: u.Version + 1, Event: events[0]})
			if u.TokenHash != tc.rotate {
				t.Errorf("token hash after the event: %q, want %q", u.TokenHash, tc.rotate)
			}
		})
	}
}
