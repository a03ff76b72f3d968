package domain

import "time"

// User is the state of a user account aggregate.
type User struct {
	Name  string `json:"name"`
	Admin bool   `json:"admin"`
	// TokenHash is the hash of the user's API token; empty once the token
	// is revoked.
	TokenHash string `json:"token_hash"`
	Version   int64  `json:"version"`
}

// Apply folds a recorded event into the user's state.
func (u *User) Apply(rec Recorded) {
	u.Version = rec.Version
	switch e := rec.Event.(type) {
	case UserCreated:
		u.Name, u.Admin, u.TokenHash = e.Name, e.Admin, e.TokenHash
	case UserTokenRevoked:
		u.TokenHash = ""
	case UserTokenRotated:
		u.TokenHash = e.TokenHash
	}
}

// Revoked reports whether the user exists and has no valid token.
func (u *User) Revoked() bool { return u.Name != "" && u.TokenHash == "" }

// mayManageTokens: only administrators revoke and rotate tokens (an
// operator with the store at hand acts as one).
func mayManageTokens(a Actor) error {
	if !a.Admin {
		return errorf(ErrForbidden, "only an administrator may revoke or rotate API tokens")
	}
	return nil
}

// RevokeToken decides the revocation of the user's API token.
func (u *User) RevokeToken(name string, a Actor) ([]Event, error) {
	if err := mayManageTokens(a); err != nil {
		return nil, err
	}
	if u.Name == "" {
		return nil, errorf(ErrNotFound, "user %q does not exist", name)
	}
	if u.Revoked() {
		return nil, errorf(ErrConflict, "the API token of user %q is already revoked", name)
	}
	return []Event{UserTokenRevoked{}}, nil
}

// RotateToken decides the replacement of the user's API token (revoked or
// not) by the one whose hash is tokenHash.
func (u *User) RotateToken(name string, tokenHash string, a Actor) ([]Event, error) {
	if err := mayManageTokens(a); err != nil {
		return nil, err
	}
	if u.Name == "" {
		return nil, errorf(ErrNotFound, "user %q does not exist", name)
	}
	if tokenHash == "" || tokenHash == u.TokenHash {
		return nil, errorf(ErrInvalid, "a new token hash is required")
	}
	return []Event{UserTokenRotated{TokenHash: tokenHash}}, nil
}

// EndSession decides the end of one of the user's web sessions. Signing out
// is always allowed, even after the token was revoked.
func (u *User) EndSession(session string, until time.Time) ([]Event, error) {
	if session == "" {
		return nil, errorf(ErrInvalid, "a session id is required")
	}
	if u.Name == "" {
		return nil, errorf(ErrNotFound, "user does not exist")
	}
	return []Event{SessionEnded{Session: session, Until: until.UTC()}}, nil
}

// MaxUserNameLength bounds user names.
const MaxUserNameLength = 64

// ValidateUserName checks a new user's name: 1 to MaxUserNameLength ASCII
// letters, digits, '.', '_' and '-', starting with a letter or a digit (the
// run names' alphabet, see ValidateRunName). The "system:" names of the
// workers cannot be taken, since ':' is not in the alphabet.
func ValidateUserName(name string) error {
	return validateName("user name", name, MaxUserNameLength)
}

// Create decides the creation of a user account.
func (u *User) Create(name string, admin bool, tokenHash string) ([]Event, error) {
	if err := ValidateUserName(name); err != nil {
		return nil, err
	}
	if u.Name != "" {
		return nil, errorf(ErrExists, "user %q already exists", name)
	}
	if tokenHash == "" {
		return nil, errorf(ErrInvalid, "a token hash is required")
	}
	return []Event{UserCreated{Name: name, Admin: admin, TokenHash: tokenHash}}, nil
}
