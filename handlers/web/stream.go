package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/piperun/piperun/handlers/request"
	"github.com/piperun/piperun/projections"
)

// Defaults of Server.MaxStreams and Server.MaxStreamsPerUser.
const (
	DefaultMaxStreams        = 256
	DefaultMaxStreamsPerUser = 8
)

// defaultStreamWriteTimeout is Server.StreamWriteTimeout unless set.
const defaultStreamWriteTimeout = 2 * time.Minute

// ErrTooManyStreams refuses a live stream past Server.MaxStreams or
// Server.MaxStreamsPerUser. HTTP 429.
var ErrTooManyStreams = errors.New("too many live streams")

// logBatch is a "log" event of the live stream: lines of one log, the first
// of which is line From (1-based).
type logBatch struct {
	Log   string   `json:"log"`
	From  int64    `json:"from"`
	Lines []string `json:"lines"`
}

// maxLogBatch bounds the lines of one "log" event; a longer backlog goes
// out in several.
const maxLogBatch = 5000

// streamCounts counts the open live streams, in all and per user.
type streamCounts struct {
	mu     sync.Mutex
	total  int
	byUser map[string]int
}

// acquireStream counts a new stream of user, or refuses it past the caps.
func (s *Server) acquireStream(user string) (release func(), err error) {
	c := &s.streams
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.total >= s.MaxStreams {
		return nil, fmt.Errorf("%w: the server has its maximum of %d open; try again later", ErrTooManyStreams, s.MaxStreams)
	}
	if c.byUser[user] >= s.MaxStreamsPerUser {
		return nil, fmt.Errorf("%w: %s has %d open, the most one user may have; close a page that follows a run", ErrTooManyStreams, user, s.MaxStreamsPerUser)
	}
	if c.byUser == nil {
		c.byUser = map[string]int{}
	}
	c.total++
	c.byUser[user]++
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.total--
			if c.byUser[user]--; c.byUser[user] <= 0 {
				delete(c.byUser, user)
			}
		})
	}, nil
}

// stream follows a run live as Server-Sent Events, fed by the run's feed
// (see feeds), which reads the run once per change for all its streams:
//   - "run": the run's detail model (projections.RunDetail), on connect,
//     and again only if the stream fell behind;
//   - "change": what changed since the previous event (runChange);
//   - "log": new lines of the log named by ?log= (from line ?from=, default
//     1), if one is open on the page;
//   - "gone": the run was deleted; the stream ends.
//
// A stream lives for as long as the page is open: it replaces the
// connection's write deadline by one for each event, StreamWriteTimeout
// from its start, so that a client that stops reading is let go. (The
// server's read deadline is no concern: net/http lifts it once the
// request's body is read, and a GET has none.)
func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	name := mux.Vars(r)["name"]
	q := r.URL.Query()
	logName := q.Get("log")
	next := int64(1)
	if v := q.Get("from"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			s.fail(w, r, http.StatusBadRequest, fmt.Errorf("%w: from must be a positive line number, got %q", request.ErrBadRequest, v))
			return
		}
		next = n
	}
	release, err := s.acquireStream(request.ActorFrom(ctx).Name)
	if err != nil {
		w.Header().Set("Retry-After", "30")
		s.fail(w, r, http.StatusTooManyRequests, err)
		return
	}
	defer release()
	f, err := s.feeds.join(ctx, name)
	if err != nil {
		s.fail(w, r, request.StatusFor(err), err)
		return
	}
	defer s.feeds.release(f)
	fl, first, err := f.follow()
	if errors.Is(err, projections.ErrNotFound) {
		s.fail(w, r, http.StatusNotFound, err)
		return
	}
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	defer func() { f.unfollow(fl) }()

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // let proxies pass events on at once
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)

	// write sends bytes within the write timeout, from now.
	write := func(b []byte) error {
		if err := rc.SetWriteDeadline(time.Now().Add(s.StreamWriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		return rc.Flush()
	}
	// sendLog sends the open log's lines written since the last sent.
	sendLog := func() error {
		if logName == "" {
			return nil
		}
		for {
			lines, err := s.Read.LogTail(ctx, name, logName, next)
			if err != nil {
				return err
			}
			if len(lines) == 0 {
				return nil
			}
			if len(lines) > maxLogBatch {
				lines = lines[:maxLogBatch]
			}
			b, err := frame("log", logBatch{Log: logName, From: next, Lines: lines})
			if err != nil {
				return err
			}
			if err := write(b); err != nil {
				return err
			}
			next += int64(len(lines))
		}
	}
	if err := write(first); err != nil {
		return
	}
	first = nil
	if err := sendLog(); err != nil {
		return
	}
	tick := time.NewTicker(s.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			return
		case b, ok := <-fl.ch:
			if !ok {
				// The run is gone, or this stream fell behind: then it
				// starts again from the whole run.
				nfl, again, err := f.follow()
				if err != nil {
					if again != nil {
						_ = write(again)
					}
					return
				}
				fl, b = nfl, again
			}
			if err := write(b); err != nil {
				return
			}
		case <-tick.C:
			if err := write([]byte(": keep-alive\n\n")); err != nil {
				return
			}
		}
		if err := sendLog(); err != nil {
			if ctx.Err() == nil {
				s.Logger.Warn("live stream: read log", "run", name, "log", logName, "err", err)
			}
			return
		}
	}
}
