// Users: creating them, their API tokens and their web sessions.

package command

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/eventjson"
	"github.com/piperun/piperun/eventstore"
)

// LoadUser returns a user's state (zero if absent).
func (s *Service) LoadUser(ctx context.Context, name string) (domain.User, error) {
	evs, err := s.Store.ReadStream(ctx, UserStream(name), 1, 0)
	if err != nil {
		return domain.User{}, fmt.Errorf("read user %s: %w", name, err)
	}
	var u domain.User
	for _, ev := range evs {
		rec, err := eventjson.Recorded(ev)
		if err != nil {
			return domain.User{}, fmt.Errorf("load user %s: %w", name, err)
		}
		u.Apply(rec)
	}
	return u, nil
}

// CreateUser creates a user with a fresh API token and returns the token.
// Only the token's SHA-256 is stored.
func (s *Service) CreateUser(ctx context.Context, name string, admin bool, actor string) (string, error) {
	u, err := s.LoadUser(ctx, name)
	if err != nil {
		return "", err
	}
	token, err := NewToken()
	if err != nil {
		return "", err
	}
	evs, err := u.Create(name, admin, HashToken(token))
	if err != nil {
		return "", err
	}
	typ, body, err := eventjson.Encode(evs[0])
	if err != nil {
		return "", err
	}
	if _, _, err := s.Store.Append(ctx, UserStream(name), u.Version, eventstore.EventData{
		ID: s.NewID(), Type: typ, Data: body, Actor: actor, Time: s.Now(),
	}); err != nil {
		if errors.Is(err, eventstore.ErrConcurrency) {
			return "", fmt.Errorf("create user %s: %w: user %q already exists", name, domain.ErrExists, name)
		}
		return "", fmt.Errorf("create user %s: %w", name, err)
	}
	return token, nil
}

// RevokeToken withdraws a user's API token (administrators only) and
// returns the log position of the revocation. The token and the user's web
// sessions stop working on a replica as soon as its read models reach that
// position.
func (s *Service) RevokeToken(ctx context.Context, name string, actor domain.Actor) (int64, error) {
	return s.decideUser(ctx, name, actor.Name, "revoke the token of", func(u *domain.User) ([]domain.Event, error) {
		return u.RevokeToken(name, actor)
	})
}

// RotateToken gives a user a new API token (administrators only), revoked
// or not, and returns it with the log position of the change. Only its
// SHA-256 is stored.
func (s *Service) RotateToken(ctx context.Context, name string, actor domain.Actor) (token string, pos int64, err error) {
	token, err = NewToken()
	if err != nil {
		return "", 0, err
	}
	pos, err = s.decideUser(ctx, name, actor.Name, "rotate the token of", func(u *domain.User) ([]domain.Event, error) {
		return u.RotateToken(name, HashToken(token), actor)
	})
	if err != nil {
		return "", 0, err
	}
	return token, pos, nil
}

// EndSession records that the web session id of user name was signed out
// of; until is when it would have expired anyway. It returns the log
// position of the record.
func (s *Service) EndSession(ctx context.Context, name, session string, until time.Time) (int64, error) {
	return s.decideUser(ctx, name, name, "end a session of", func(u *domain.User) ([]domain.Event, error) {
		return u.EndSession(session, until)
	})
}

// decideUser loads user name, decides with decide and appends the events
// at the version read, trying again on a concurrent change of the user.
func (s *Service) decideUser(ctx context.Context, name, actor, what string, decide func(*domain.User) ([]domain.Event, error)) (int64, error) {
	for attempt := 0; ; attempt++ {
		u, err := s.LoadUser(ctx, name)
		if err != nil {
			return 0, err
		}
		evs, err := decide(&u)
		if err != nil {
			return 0, fmt.Errorf("%s user %s: %w", what, name, err)
		}
		data := make([]eventstore.EventData, 0, len(evs))
		for _, ev := range evs {
			typ, body, err := eventjson.Encode(ev)
			if err != nil {
				return 0, err
			}
			data = append(data, eventstore.EventData{ID: s.NewID(), Type: typ, Data: body, Actor: actor, Time: s.Now()})
		}
		_, pos, err := s.Store.Append(ctx, UserStream(name), u.Version, data...)
		if errors.Is(err, eventstore.ErrConcurrency) && attempt < 3 {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("%s user %s: %w", what, name, err)
		}
		return pos, nil
	}
}

// HashToken returns the hex SHA-256 of an API token, the only form in which
// tokens are stored.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// NewToken returns a new random API token.
func NewToken() (string, error) {
	var b [24]byte
	if _, err := randRead(b[:]); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	return "prt_" + hex.EncodeToString(b[:]), nil
}
