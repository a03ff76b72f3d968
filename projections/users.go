// Users and web sessions: their projection and queries.

package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/piperun/piperun/domain"
)

// revokedTokenHash is what the users table holds for a revoked token: the
// column is unique and not null, and no token hashes to it (hashes are
// hex).
func revokedTokenHash(user string) string { return "revoked:" + user }

// applyUser projects an event of a user's stream.
func (b *batchWriter) applyUser(ctx context.Context, name string, rec domain.Recorded) error {
	var err error
	switch e := rec.Event.(type) {
	case domain.UserCreated:
		err = b.exec(ctx, `INSERT INTO users (name, admin, token_hash) VALUES (?, ?, ?)
			ON CONFLICT(name) DO UPDATE SET admin = excluded.admin, token_hash = excluded.token_hash`, e.Name, e.Admin, e.TokenHash)
	case domain.UserTokenRevoked:
		b.tokensChanged = true
		err = b.exec(ctx, `UPDATE users SET token_hash = ? WHERE name = ?`, revokedTokenHash(name), name)
	case domain.UserTokenRotated:
		b.tokensChanged = true
		err = b.exec(ctx, `UPDATE users SET token_hash = ? WHERE name = ?`, e.TokenHash, name)
	case domain.SessionEnded:
		// Records whose session has expired anyway are no longer needed;
		// the event's time, not the clock, keeps a rebuild identical.
		if err = b.exec(ctx, `DELETE FROM ended_sessions WHERE until < ?`, rec.Time.Unix()); err == nil {
			err = b.exec(ctx, `INSERT INTO ended_sessions (id, until) VALUES (?, ?)
				ON CONFLICT(id) DO UPDATE SET until = excluded.until`, e.Session, e.Until.Unix())
		}
	}
	if err != nil {
		return fmt.Errorf("project user %s: %w", name, err)
	}
	return nil
}

// UsersGeneration returns a value that changes whenever a user's token may
// have changed in the read models (see Store.usersGen). A cache of resolved
// tokens reads it before resolving one and drops what it holds when it
// changes.
func (s *Store) UsersGeneration() int64 { return s.usersGen.Load() }

// SessionEnded reports whether the web session id was signed out of.
func (s *Store) SessionEnded(ctx context.Context, id string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM ended_sessions WHERE id = ?`, id).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("look up session: %w", err)
	}
	return n > 0, nil
}

// UserByTokenHash finds the user holding a token.
func (s *Store) UserByTokenHash(ctx context.Context, hash string) (domain.User, error) {
	var u domain.User
	err := s.db.QueryRowContext(ctx, `SELECT name, admin, token_hash FROM users WHERE token_hash = ?`, hash).Scan(&u.Name, &u.Admin, &u.TokenHash)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.User{}, ErrNotFound
	}
	if err != nil {
		return domain.User{}, fmt.Errorf("look up token: %w", err)
	}
	return u, nil
}

// CountUsers returns the number of users.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return n, nil
}
