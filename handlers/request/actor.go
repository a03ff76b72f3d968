// Who is asking: API tokens resolved to users (with their cache), and the
// caller carried in the request's context.

package request

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/piperun/piperun/command"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/eventstore"
	"github.com/piperun/piperun/projections"
)

// ErrUnauthorized: no valid token. HTTP 401.
var ErrUnauthorized = errors.New("unauthorized")

type ctxKey struct{}

// ActorFrom returns the authenticated actor of a request.
func ActorFrom(ctx context.Context) domain.Actor {
	a, _ := ctx.Value(ctxKey{}).(domain.Actor)
	return a
}

// WithActor returns ctx carrying an authenticated actor (the API's token
// check and the web pages' session check put it there).
func WithActor(ctx context.Context, a domain.Actor) context.Context {
	return context.WithValue(ctx, ctxKey{}, a)
}

// Authenticator resolves API tokens to users from the read models. It
// remembers the tokens it resolved (see tokenCache), so one Authenticator
// is shared by every handler of a process; use it by pointer.
type Authenticator struct {
	// Read holds the users, indexed by the SHA-256 of their tokens.
	Read *projections.Store
	// Store is the event log Read follows: a token not found is looked
	// for again once Read has caught up with it.
	Store eventstore.Store

	tokens tokenCache
}

// Authenticate resolves an API token to a user.
func (au *Authenticator) Authenticate(ctx context.Context, token string) (domain.Actor, error) {
	if token == "" || len(token) > 256 {
		return domain.Actor{}, fmt.Errorf("%w: a valid API token is required (Authorization: Bearer <token>)", ErrUnauthorized)
	}
	hash := command.HashToken(token)
	// Looked up by its SHA-256, here as in the read models' index: what the
	// timing of a lookup can tell is about a hash, which does not help to
	// guess a token.
	gen := au.Read.UsersGeneration()
	if a, ok := au.tokens.get(hash, gen); ok {
		return a, nil
	}
	u, err := au.Read.UserByTokenHash(ctx, hash)
	if errors.Is(err, projections.ErrNotFound) {
		// The user may have been created a moment ago by `piperun user add`
		// in another process: read the log up to its head once.
		if cerr := au.Read.CatchUp(ctx, au.Store); cerr != nil {
			return domain.Actor{}, cerr
		}
		u, err = au.Read.UserByTokenHash(ctx, hash)
	}
	if errors.Is(err, projections.ErrNotFound) {
		return domain.Actor{}, fmt.Errorf("%w: the API token is not valid", ErrUnauthorized)
	}
	if err != nil {
		return domain.Actor{}, err
	}
	a := domain.Actor{Name: u.Name, Admin: u.Admin}
	au.tokens.put(hash, a, gen)
	return a, nil
}

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
