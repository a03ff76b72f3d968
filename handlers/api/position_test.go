package api_test

import (
	"context"
	"encoding/json"
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
	"github.com/piperun/piperun/eventstore"
	"github.com/piperun/piperun/handlers/api"
	"github.com/piperun/piperun/projections"
)

// TestCommandsAnswerTheirPosition: a command's answer carries the global
// log position of its last event, in the Piperun-Position header and in
// its JSON, and sets no position cookie for a token-authenticated caller.
func TestCommandsAnswerTheirPosition(t *testing.T) {
	fx := newFixture(t)
	body, err := json.Marshal(map[string]string{"name": "pos", "config": fx.config(2)})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		method, path string
		body         []byte
		code         int
	}{
		{http.MethodPost, "/api/v1/runs", body, http.StatusCreated},
		{http.MethodPost, "/api/v1/runs/pos/process", []byte(`{}`), http.StatusAccepted},
		{http.MethodPost, "/api/v1/runs/pos/cancel", nil, http.StatusOK},
		{http.MethodPost, "/api/v1/users/bob/rotate", nil, http.StatusOK},
	} {
		req := httptest.NewRequest(c.method, c.path, strings.NewReader(string(c.body)))
		req.Header.Set("Authorization", fx.as("root"))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		fx.h.ServeHTTP(rec, req)
		if rec.Code != c.code {
			t.Fatalf("%s %s: %d %s; want %d", c.method, c.path, rec.Code, rec.Body, c.code)
		}
		var out struct {
			Position int64 `json:"position"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatal(err)
		}
		head := fx.head(t)
		if h := rec.Header().Get(api.PositionHeader); h != strconv.FormatInt(head, 10) || out.Position != head {
			t.Errorf("%s %s: %s %q, JSON position %d; want the log's head %d in both", c.method, c.path, api.PositionHeader, h, out.Position, head)
		}
		if sc := rec.Header().Get("Set-Cookie"); sc != "" {
			t.Errorf("%s %s with a token set a cookie: %s", c.method, c.path, sc)
		}
	}
}

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

// TestAwaitPosition: a read that brings a position its replica's read
// models have not reached waits for them, up to ReadYourWrites, then
// answers 503 with Retry-After and a JSON error; once the log can be read
// again, the same read is answered from read models that show the
// position. A read without the position is answered at once, stale. A
// header that is not a position is a 400.
func TestAwaitPosition(t *testing.T) {
	fx := newFixture(t)
	ctx := context.Background()
	read, err := projections.Open(ctx, filepath.Join(t.TempDir(), "read.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer read.Close()
	if err := read.CatchUp(ctx, fx.store); err != nil {
		t.Fatal(err)
	}
	log := stalledLog{Store: fx.store, open: make(chan struct{})}
	const wait = 300 * time.Millisecond
	srv := &api.Server{Svc: command.New(log), Read: read, ParseConfig: parseConfig(fx.survey.Dir),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), ReadYourWrites: wait}
	h := srv.Router()
	res, err := fx.svc.CreateRun(ctx, domain.CreateRun{Name: "later", Config: mustParse(t, fx, 2), Actor: domain.Actor{Name: "alice"}})
	if err != nil {
		t.Fatal(err)
	}
	get := func(minPos string) (*httptest.ResponseRecorder, time.Duration) {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/runs/later", nil)
		req.Header.Set("Authorization", fx.as("alice"))
		if minPos != "" {
			req.Header.Set(api.MinPositionHeader, minPos)
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
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != api.RetryAfterSeconds ||
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

func mustParse(t *testing.T, fx *fixture, n int) domain.RunConfig {
	t.Helper()
	c, err := parseConfig(fx.survey.Dir)([]byte(fx.config(n)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}
