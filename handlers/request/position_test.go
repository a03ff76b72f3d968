package request_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/piperun/piperun/command"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/domain/domaintest"
	"github.com/piperun/piperun/eventstore"
	"github.com/piperun/piperun/eventstore/memory"
	"github.com/piperun/piperun/handlers/request"
	"github.com/piperun/piperun/projections"
)

// stalledLog is an event store whose global log cannot be read until open
// is closed, as when the store is overloaded: read models that follow it
// stay where they are.
type stalledLog struct {
	eventstore.Store
	open chan struct{}
}

func (s stalledLog) ReadAll(ctx context.Context, after int64, limit int) ([]eventstore.Event, error) {
	select {
	case <-s.open:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.Store.ReadAll(ctx, after, limit)
}

// runReader answers GET /api/v1/runs/{name} for run "later" as the API does:
// it waits for the request's position, then reads the run; an error is a
// JSON {"error": ...} with StatusFor's code, and Retry-After when the read
// models are behind.
func runReader(positions *request.Positions, read *projections.Store) http.Handler {
	fail := func(w http.ResponseWriter, err error) {
		if errors.Is(err, request.ErrReadModelsBehind) {
			w.Header().Set("Retry-After", request.RetryAfterSeconds)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(request.StatusFor(err))
		_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := positions.Await(r); err != nil {
			fail(w, err)
			return
		}
		d, err := read.GetRun(r.Context(), "later")
		if err != nil {
			fail(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(d)
	})
}

// TestAwaitPosition: a read that brings a position its replica's read
// models have not reached waits for them, up to Positions.Wait, then
// answers 503 with Retry-After and a JSON error; once the log can be read
// again, the same read is answered from read models that show the
// position. A read without the position is answered at once, stale. A
// header that is not a position is a 400.
func TestAwaitPosition(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	svc := command.New(store)
	read, err := projections.Open(ctx, filepath.Join(t.TempDir(), "read.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer read.Close()
	if err := read.CatchUp(ctx, store); err != nil {
		t.Fatal(err)
	}
	log := stalledLog{Store: store, open: make(chan struct{})}
	const wait = 300 * time.Millisecond
	positions := &request.Positions{Read: read, Store: log, Wait: wait, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	h := runReader(positions, read)
	res, err := svc.CreateRun(ctx, domain.CreateRun{Name: "later", Config: domaintest.Config(domaintest.Settings, "epoch01", "epoch02"), Actor: domain.Actor{Name: "alice"}})
	if err != nil {
		t.Fatal(err)
	}
	get := func(minPos string) (*httptest.ResponseRecorder, time.Duration) {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/runs/later", nil)
		if minPos != "" {
			req.Header.Set(request.MinPositionHeader, minPos)
		}
		rec := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(rec, req)
		return rec, time.Since(start)
	}
	pos := strconv.FormatInt(res.Position, 10)

	if rec, _ := get(""); rec.Code != http.StatusNotFound {
		t.Fatalf("read without a position: %d %s; want the stale 404", rec.Code, rec.Body)
	}
	if rec, _ := get("soon"); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `"error"`) {
		t.Fatalf("read with position %q: %d %s; want 400 with a JSON error", "soon", rec.Code, rec.Body)
	}
	rec, took := get(pos)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != request.RetryAfterSeconds ||
		!strings.Contains(rec.Body.String(), `"error"`) || took < wait {
		t.Fatalf("read with position %s while the log cannot be read: %d after %s, Retry-After %q: %s; want 503 with Retry-After after waiting %s",
			pos, rec.Code, took, rec.Header().Get("Retry-After"), rec.Body, wait)
	}
	close(log.open)
	rec, _ = get(pos)
	var d projections.RunDetail
	if err := json.Unmarshal(rec.Body.Bytes(), &d); rec.Code != http.StatusOK || err != nil || d.Name != "later" {
		t.Fatalf("read with position %s once the log can be read: %d %s; want the run", pos, rec.Code, rec.Body)
	}
}
