package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/piperun/piperun/handlers/api"
	"github.com/piperun/piperun/projections"
)

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

// stream follows a run live as Server-Sent Events, fed by the read models'
// change notifications:
//   - "run": the run's detail model (projections.RunDetail), on connect and
//     whenever the run changes;
//   - "log": new lines of the log named by ?log= (from line ?from=, default
//     1), if one is open on the page;
//   - "gone": the run was deleted; the stream ends.
//
// Notifications can be dropped when the stream falls behind, so every
// notification, and every heartbeat, re-reads the run instead of trusting
// what the notification said.
func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	name := mux.Vars(r)["name"]
	q := r.URL.Query()
	logName := q.Get("log")
	next := int64(1)
	if v := q.Get("from"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			s.fail(w, r, http.StatusBadRequest, fmt.Errorf("%w: from must be a positive line number, got %q", api.ErrBadRequest, v))
			return
		}
		next = n
	}
	// Subscribe before the first read, so that no change falls between.
	changes, cancel := s.API.Read.Subscribe()
	defer cancel()
	d, err := s.API.Read.GetRun(ctx, name)
	if err != nil {
		s.fail(w, r, api.StatusFor(err), err)
		return
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // let proxies pass events on at once
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)

	send := func(event string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode %s event: %w", event, err)
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return err
		}
		return rc.Flush()
	}
	var lastVersion int64 = -1
	var lastUpdated time.Time
	// refresh sends what changed since the last send.
	refresh := func(d projections.RunDetail) error {
		if d.Version != lastVersion || !d.Updated.Equal(lastUpdated) {
			if err := send("run", d); err != nil {
				return err
			}
			lastVersion, lastUpdated = d.Version, d.Updated
		}
		if logName == "" {
			return nil
		}
		for {
			lines, err := s.API.Read.LogLines(ctx, name, logName, next)
			if errors.Is(err, projections.ErrNotFound) {
				return nil // not written yet
			}
			if err != nil {
				return err
			}
			if len(lines) == 0 {
				return nil
			}
			if len(lines) > maxLogBatch {
				lines = lines[:maxLogBatch]
			}
			if err := send("log", logBatch{Log: logName, From: next, Lines: lines}); err != nil {
				return err
			}
			next += int64(len(lines))
		}
	}
	if err := refresh(d); err != nil {
		return
	}
	tick := time.NewTicker(s.Heartbeat)
	defer tick.Stop()
	for {
		mine := false
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			return
		case c, ok := <-changes:
			if !ok {
				return
			}
			mine = c.Run == name
			// Take what else is queued, so that a burst costs one read.
			for drained := false; !drained; {
				select {
				case c, ok := <-changes:
					if !ok {
						return
					}
					mine = mine || c.Run == name
				default:
					drained = true
				}
			}
			if !mine {
				continue
			}
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
		d, err := s.API.Read.GetRun(ctx, name)
		if errors.Is(err, projections.ErrNotFound) {
			_ = send("gone", map[string]string{"name": name})
			return
		}
		if err != nil {
			s.Logger.Warn("live stream: read run", "run", name, "err", err)
			continue
		}
		if err := refresh(d); err != nil {
			return
		}
	}
}
