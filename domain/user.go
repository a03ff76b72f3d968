package domain

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
