// Which log position a request must see: read-your-writes across replicas.

package request

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/piperun/piperun/apitypes"
	"github.com/piperun/piperun/eventstore"
	"github.com/piperun/piperun/projections"
)

// Read-your-writes across replicas. Each API replica builds its read
// models from the event store's global log, so a read that lands on
// another replica than the command before it may not show the command yet.
// A command's answer therefore carries the log position its events reached
// (PositionHeader, and "position" in its JSON); a request that brings a
// position back (MinPositionHeader, or PositionCookie for the web pages) is
// answered only once this replica's read models have reached it, or with
// 503 and Retry-After when they cannot within Positions.Wait.
const (
	// PositionHeader carries, in a command's answer, the global log
	// position of the command's last event.
	PositionHeader = apitypes.PositionHeader
	// MinPositionHeader asks that a request be answered from read models
	// that reflect at least this global log position. A value that is not
	// a non-negative integer is refused with 400.
	MinPositionHeader = apitypes.MinPositionHeader
	// PositionCookie holds, for the web pages, the position of the last
	// command a page sent; the replica that takes the command sets it and
	// every replica reads it. A value that is not a number is ignored.
	PositionCookie = "piperun_position"
	// PositionCookieTTL is the cookie's lifetime: far longer than a
	// replica takes to catch up with the log, short enough that a stale
	// cookie does not follow a browser around.
	PositionCookieTTL = 5 * time.Minute
)

// ErrReadModelsBehind: the replica's read models did not reach the
// position the request asked for within Positions.Wait. HTTP 503, with
// Retry-After.
var ErrReadModelsBehind = errors.New("read models behind")

// RetryAfterSeconds is the Retry-After of an ErrReadModelsBehind answer.
const RetryAfterSeconds = "1"

// DefaultWait is Positions.Wait unless set.
const DefaultWait = 2 * time.Second

// catchUpBound bounds a catch-up started for a waiting request; it runs
// on after the request gives up, for the requests that follow.
const catchUpBound = time.Minute

// Positions holds requests until the read models reach the log position
// they ask for, and tells callers the position their commands reached. It
// runs one catch-up of the read models at a time for all the requests that
// wait, so one Positions is shared by every handler of a process; use it
// by pointer.
type Positions struct {
	// Read is the read models the requests are answered from.
	Read *projections.Store
	// Store is the event log Read follows.
	Store eventstore.Store
	// Wait bounds how long a request waits for the read models to reach
	// its position, and a command for them to show its effect, before
	// answering (default DefaultWait).
	Wait time.Duration
	// Logger receives the failures of background catch-ups (default
	// slog.Default()).
	Logger *slog.Logger

	catching catchUpFlight
}

// Bound is the wait bound in force: Wait, or DefaultWait unless set.
func (p *Positions) Bound() time.Duration {
	if p.Wait > 0 {
		return p.Wait
	}
	return DefaultWait
}

// MinPosition returns the position a request asks its answer to reflect:
// the largest of its MinPositionHeader values and its PositionCookie (0 if
// none). A header value that is not a non-negative integer is
// ErrBadRequest; a cookie that is not one is ignored, since the browser
// sends it unasked.
func MinPosition(r *http.Request) (int64, error) {
	var pos int64
	for _, v := range r.Header.Values(MinPositionHeader) {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%w: header %s must be a global log position (a non-negative integer), got %q", ErrBadRequest, MinPositionHeader, v)
		}
		pos = max(pos, n)
	}
	if c, err := r.Cookie(PositionCookie); err == nil {
		if n, err := strconv.ParseInt(c.Value, 10, 64); err == nil && n > 0 {
			pos = max(pos, n)
		}
	}
	return pos, nil
}

// Await waits, up to Bound, until the read models reflect
// the position the request asks for (MinPosition), and starts reading the
// log at once rather than at the projector's next poll. It returns
// ErrBadRequest for a malformed header and ErrReadModelsBehind when the
// wait runs out. A position beyond the log's head (one from another event
// store, or made up) is taken as the head: nothing could ever reach it.
func (p *Positions) Await(r *http.Request) error {
	pos, err := MinPosition(r)
	if err != nil || pos <= p.Read.Position() {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), p.Bound())
	defer cancel()
	head, err := p.Store.HeadPosition(ctx)
	if err != nil {
		return fmt.Errorf("read the event log's head to reach position %d: %w", pos, err)
	}
	pos = min(pos, head)
	if pos <= p.Read.Position() {
		return nil
	}
	p.catchUp()
	if err := p.Read.WaitFor(ctx, pos); err != nil {
		if r.Context().Err() != nil {
			return r.Context().Err()
		}
		return fmt.Errorf("%w: this replica's read models reached position %d, not yet the requested %d, within %s; try again",
			ErrReadModelsBehind, p.Read.Position(), pos, p.Bound())
	}
	return nil
}

// catchUpFlight runs one catch-up of the read models at a time for the
// requests that wait for a position; a request that comes while one runs
// asks for another after it, since the running one may have read the log
// before the request's position was written.
type catchUpFlight struct {
	mu      sync.Mutex
	running bool
	again   bool
}

// catchUp brings the read models up to the log's head in the background,
// joining a catch-up already under way.
func (p *Positions) catchUp() {
	f := &p.catching
	f.mu.Lock()
	if f.running {
		f.again = true
		f.mu.Unlock()
		return
	}
	f.running = true
	f.mu.Unlock()
	go func() {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), catchUpBound)
			err := p.Read.CatchUp(ctx, p.Store)
			cancel()
			if err != nil {
				// The projector keeps following the log; the waiting
				// requests time out with ErrReadModelsBehind.
				p.logger().Warn("catch up read models for a request that waits for a position", "err", err)
			}
			f.mu.Lock()
			if !f.again {
				f.running = false
				f.mu.Unlock()
				return
			}
			f.again = false
			f.mu.Unlock()
		}
	}()
}

func (p *Positions) logger() *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return slog.Default()
}

// Settle tells the caller the position a command reached (SetPosition)
// and waits, up to Bound, until the read models reach it, so that the
// caller's next read on this replica shows the command's effect. Read
// models still behind after the wait are left to catch up: the position
// the caller holds makes its next read wait for them.
func (p *Positions) Settle(w http.ResponseWriter, r *http.Request, pos int64) {
	SetPosition(w, r, pos)
	ctx, cancel := context.WithTimeout(r.Context(), p.Bound())
	defer cancel()
	_ = p.Read.WaitFor(ctx, pos)
}

// SetPosition tells the caller the global log position a command reached:
// PositionHeader always, and PositionCookie when the request came from the
// web pages (authenticated by their session rather than a token), so that
// the page loads and fetches that follow bring it to whichever replica
// serves them.
func SetPosition(w http.ResponseWriter, r *http.Request, pos int64) {
	if pos <= 0 {
		return
	}
	w.Header().Set(PositionHeader, strconv.FormatInt(pos, 10))
	if r.Header.Get("Authorization") != "" {
		return
	}
	if c, err := r.Cookie(PositionCookie); err == nil {
		if n, err := strconv.ParseInt(c.Value, 10, 64); err == nil && n > pos {
			pos = n
		}
	}
	http.SetCookie(w, &http.Cookie{
		Name: PositionCookie, Value: strconv.FormatInt(pos, 10), Path: "/", MaxAge: int(PositionCookieTTL.Seconds()),
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil,
	})
}
