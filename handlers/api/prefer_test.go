package api_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/handlers/api"
	"github.com/piperun/piperun/handlers/request"
	"github.com/piperun/piperun/projections"
)

// TestPreferRespondAsync checks read-your-writes and its opt-out: a
// command waits (up to Positions.Wait) for the read models to show it,
// unless the request says "Prefer: respond-async", which is answered once
// the command's events are stored, with "Preference-Applied". The read
// models here are caught up once and never again, so a wait lasts its
// whole bound.
func TestPreferRespondAsync(t *testing.T) {
	fx := newFixture(t)
	fx.seedRun(t, "other", "alice")
	ctx := context.Background()
	read, err := projections.Open(ctx, filepath.Join(t.TempDir(), "read.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer read.Close()
	if err := read.CatchUp(ctx, fx.store); err != nil {
		t.Fatal(err)
	}
	const wait = 400 * time.Millisecond
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := &api.Server{Svc: fx.svc, Read: read, ParseConfig: parseConfig(fx.survey.Dir),
		Auth:      &request.Authenticator{Read: read, Store: fx.store},
		Positions: &request.Positions{Read: read, Store: fx.store, Wait: wait, Logger: quiet},
		Logger:    quiet, Artifacts: fx.arts}
	h, err := srv.Router()
	if err != nil {
		t.Fatal(err)
	}
	restore := func(run, prefer string) (*httptest.ResponseRecorder, time.Duration) {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/runs/"+run+"/restore", strings.NewReader(`{}`))
		req.Header.Set("Authorization", fx.as("alice"))
		req.Header.Set("Content-Type", "application/json")
		if prefer != "" {
			req.Header.Set("Prefer", prefer)
		}
		rec := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(rec, req)
		return rec, time.Since(start)
	}

	rec, took := restore("fz", "")
	if rec.Code != http.StatusAccepted || took < wait || rec.Header().Get("Preference-Applied") != "" {
		t.Fatalf("restore without Prefer: %d after %s, Preference-Applied %q; want 202 after waiting %s for the read models",
			rec.Code, took, rec.Header().Get("Preference-Applied"), wait)
	}
	rec, took = restore("other", "wait=5, respond-async")
	if rec.Code != http.StatusAccepted || took >= wait || rec.Header().Get("Preference-Applied") != "respond-async" {
		t.Fatalf("restore with Prefer: respond-async: %d after %s, Preference-Applied %q; want 202 at once", rec.Code, took, rec.Header().Get("Preference-Applied"))
	}
	r, err := fx.svc.LoadRun(ctx, "other")
	if err != nil || r.Status != domain.StatusRestoring {
		t.Fatalf("run after an async restore request: %s, %v; want Restoring", r.Status, err)
	}
}
