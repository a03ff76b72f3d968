package domain

import "strings"

// User is the state of a user account aggregate.
type User struct {
	Name      string `json:"name"`
	Admin     bool   `json:"admin"`
	TokenHash string `json:"token_hash"`
	Version   int64  `json:"version"`
}

// Apply folds a recorded event into the user's state.
func (u *User) Apply(rec Recorded) {
	u.Version = rec.Version
	if e, ok := rec.Event.(UserCreated); ok {
		u.Name, u.Admin, u.TokenHash = e.Name, e.Admin, e.TokenHash
	}
}

// ValidateUserName allows 1 to 64 letters, digits, '.', '_' and '-'.
func ValidateUserName(name string) error {
	if name == "" || len(name) > 64 {
		return errorf(ErrInvalid, "user name must be 1 to 64 characters long")
	}
	if strings.HasPrefix(name, "system:") {
		return errorf(ErrInvalid, "user names may not start with \"system:\"")
	}
	for _, c := range name {
		ok := c == '.' || c == '_' || c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !ok {
			return errorf(ErrInvalid, "user name %q may only contain letters, digits, '.', '_' and '-'", name)
		}
	}
	return nil
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
