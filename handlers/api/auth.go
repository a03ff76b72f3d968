// Authentication: bearer tokens, their cache, the caller in the context, and token revocation and rotation.

package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/gorilla/mux"

	"github.com/piperun/piperun/command"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/projections"
)

// tokenCache remembers the actors of token hashes already resolved, so that
// a request does not query the read models to authenticate. A token stops
// working when it is revoked or rotated (events of the user's stream): the
// cache holds its entries under the read models' users generation
// (projections.Store.UsersGeneration), which changes when this replica's
// read models apply such an event, and forgets them all when it does. So a
// replica refuses a revoked token as soon as its read models reach the
// revocation, as it would without the cache.
type tokenCache struct {
	mu     sync.RWMutex
	gen    int64
	byHash map[string]domain.Actor
}

// maxCachedTokens bounds the cache; it is emptied when full.
const maxCachedTokens = 10_000

// get returns the actor of hash if it was resolved under generation gen.
func (c *tokenCache) get(hash string, gen int64) (domain.Actor, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.gen != gen {
		return domain.Actor{}, false
	}
	a, ok := c.byHash[hash]
	return a, ok
}

// put remembers the actor of hash, resolved under generation gen (read
// before the lookup, so that a change during it makes the entry stale).
func (c *tokenCache) put(hash string, a domain.Actor, gen int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen < c.gen {
		return
	}
	if c.byHash == nil || len(c.byHash) >= maxCachedTokens || gen != c.gen {
		c.byHash = make(map[string]domain.Actor)
		c.gen = gen
	}
	c.byHash[hash] = a
}

type ctxKey struct{}

// ActorFrom returns the authenticated actor of a request.
func ActorFrom(ctx context.Context) domain.Actor {
	a, _ := ctx.Value(ctxKey{}).(domain.Actor)
	return a
}

// WithActor returns ctx carrying an authenticated actor (used by the web
// pages, which authenticate with a session cookie).
func WithActor(ctx context.Context, a domain.Actor) context.Context {
	return context.WithValue(ctx, ctxKey{}, a)
}

// Authenticate resolves an API token to a user.
func (s *Server) Authenticate(ctx context.Context, token string) (domain.Actor, error) {
	if token == "" || len(token) > 256 {
		return domain.Actor{}, fmt.Errorf("%w: a valid API token is required (Authorization: Bearer <token>)", ErrUnauthorized)
	}
	hash := command.HashToken(token)
	// Looked up by its SHA-256, here as in the read models' index: what the
	// timing of a lookup can tell is about a hash, which does not help to
	// guess a token.
	gen := s.Read.UsersGeneration()
	if a, ok := s.tokens.get(hash, gen); ok {
		return a, nil
	}
	u, err := s.Read.UserByTokenHash(ctx, hash)
	if errors.Is(err, projections.ErrNotFound) {
		// The user may have been created a moment ago by `piperun user add`
		// in another process: read the log up to its head once.
		if cerr := s.Read.CatchUp(ctx, s.Svc.Store); cerr != nil {
			return domain.Actor{}, cerr
		}
		u, err = s.Read.UserByTokenHash(ctx, hash)
	}
	if errors.Is(err, projections.ErrNotFound) {
		return domain.Actor{}, fmt.Errorf("%w: the API token is not valid", ErrUnauthorized)
	}
	if err != nil {
		return domain.Actor{}, err
	}
	a := domain.Actor{Name: u.Name, Admin: u.Admin}
	s.tokens.put(hash, a, gen)
	return a, nil
}

func (s *Server) auth(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := ActorFrom(r.Context()); a.Name != "" {
			if err := s.AwaitPosition(r); err != nil {
				writeError(w, err)
				return
			}
			h(w, r)
			return
		}
		authz := r.Header.Get("Authorization")
		token, ok := strings.CutPrefix(authz, "Bearer ")
		if !ok {
			token = ""
		}
		a, err := s.Authenticate(r.Context(), strings.TrimSpace(token))
		if err != nil {
			writeError(w, err)
			return
		}
		// Only an authenticated request may make this replica wait.
		if err := s.AwaitPosition(r); err != nil {
			writeError(w, err)
			return
		}
		h(w, r.WithContext(WithActor(r.Context(), a)))
	})
}

// revokeToken withdraws a user's API token (administrators only). The token
// and the user's web sessions stop working at once on this replica (the
// answer waits for its read models), and on every other as soon as its
// read models reach the revocation.
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["user"]
	pos, err := s.Svc.RevokeToken(r.Context(), name, ActorFrom(r.Context()))
	if err != nil {
		writeError(w, err)
		return
	}
	s.settleAlways(w, r, pos)
	writeJSON(w, http.StatusOK, map[string]any{"user": name, "revoked": true, "position": pos})
}

// rotateToken gives a user a new API token (administrators only) and
// returns it, this once; the old one stops working as a revoked one does.
func (s *Server) rotateToken(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["user"]
	token, pos, err := s.Svc.RotateToken(r.Context(), name, ActorFrom(r.Context()))
	if err != nil {
		writeError(w, err)
		return
	}
	s.settleAlways(w, r, pos)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"user": name, "token": token, "position": pos})
}
