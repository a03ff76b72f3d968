package domain_test

import (
	"strings"
	"testing"

	"github.com/piperun/piperun/domain"
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
				checkErr(t, err, nil)
			} else {
				checkErr(t, err, domain.ErrInvalid)
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
			checkErr(t, err, tc.want)
			if tc.want != nil {
				return
			}
			want := domain.UserCreated{Name: tc.user, Admin: true, TokenHash: tc.tokenHash}
			if got := single[domain.UserCreated](t, events); got != want {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

func TestCreateUserTwice(t *testing.T) {
	var u domain.User
	events, err := u.Create("alice", false, "sha256:token")
	checkErr(t, err, nil)
	u.Apply(domain.Recorded{Version: 1, Event: single[domain.UserCreated](t, events)})
	if want := (domain.User{Name: "alice", TokenHash: "sha256:token", Version: 1}); u != want {
		t.Fatalf("user %+v, want %+v", u, want)
	}
	_, err = u.Create("alice", true, "sha256:other")
	checkErr(t, err, domain.ErrExists)
}
