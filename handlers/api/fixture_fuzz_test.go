package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/piperun/piperun/artifacts"
	"github.com/piperun/piperun/command"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/eventstore/memory"
	"github.com/piperun/piperun/handlers/api"
	"github.com/piperun/piperun/handlers/request"
	"github.com/piperun/piperun/projections"
	"github.com/piperun/piperun/runconfig"
	"github.com/piperun/piperun/synth"
)

// fixture is a real api.Server over a memory event store and SQLite read
// models kept up to date by their projector, with users alice and bob and
// the administrator root. Run "fz" belongs to alice, is Completed and has a
// backup (a restore would be accepted).
type fixture struct {
	store  *memory.Store
	read   *projections.Store
	arts   *artifacts.Store
	svc    *command.Service
	router *mux.Router
	h      http.Handler
	tokens map[string]string
	survey synth.Survey

	// mu serialises requests, so that "the request changed nothing" can be
	// judged by the store's head position around it.
	mu sync.Mutex
}

// newFixture builds the fixture; a fuzz target builds one and reuses it for
// every input.
func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dir := tb.TempDir()
	survey, err := synth.Generate(filepath.Join(dir, "images"), synth.Options{Images: 3, Sources: 4, Seed: 7})
	if err != nil {
		tb.Fatal(err)
	}
	store := memory.New()
	read, err := projections.Open(ctx, filepath.Join(dir, "read.db"))
	if err != nil {
		tb.Fatal(err)
	}
	arts, err := artifacts.New(filepath.Join(dir, "artifacts"))
	if err != nil {
		tb.Fatal(err)
	}
	svc := command.New(store)
	fx := &fixture{store: store, read: read, arts: arts, svc: svc, tokens: map[string]string{}, survey: survey}
	for _, u := range []struct {
		name  string
		admin bool
	}{{"alice", false}, {"bob", false}, {"root", true}} {
		tok, err := svc.CreateUser(ctx, u.name, u.admin, "system:test")
		if err != nil {
			tb.Fatal(err)
		}
		fx.tokens[u.name] = tok
	}
	if err := read.CatchUp(ctx, store); err != nil {
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- read.Run(ctx, store, 20*time.Millisecond) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("projector: %v", err)
		}
		read.Close()
	})
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := &api.Server{
		Svc: svc, Read: read, ParseConfig: parseConfig(survey.Dir),
		Auth:      &request.Authenticator{Read: read, Store: store},
		Positions: &request.Positions{Read: read, Store: store, Wait: time.Second, Logger: quiet},
		Logger:    quiet, Artifacts: arts,
	}
	if fx.router, err = srv.Router(); err != nil {
		tb.Fatal(err)
	}
	fx.h = fx.router
	fx.seedRun(tb, "fz", "alice")
	return fx
}

// parseConfig is the parser the server wires in (server.ParseConfig): the
// VAST parser, then the paths checked against the images root.
func parseConfig(root string) api.ConfigParser {
	return func(text []byte) (domain.RunConfig, error) {
		c, err := runconfig.Parse(text)
		if err == nil {
			err = c.CheckPaths(root, true)
		}
		var verr *runconfig.ValidationError
		if errors.As(err, &verr) {
			return domain.RunConfig{}, fmt.Errorf("%w: configuration: %w", domain.ErrInvalid, err)
		}
		if err != nil {
			return domain.RunConfig{}, err
		}
		return c.Domain(), nil
	}
}

// config returns a valid configuration over the first n synthetic images.
func (fx *fixture) config(n int) string {
	return runconfig.Render(synth.Inputs(fx.survey.Images[:n]), "fuzz")
}

// seedRun creates run name for owner and brings it, through the domain's
// own decisions, to Completed with a backup: processed over two images,
// then over three in add mode.
func (fx *fixture) seedRun(tb testing.TB, name, owner string) {
	tb.Helper()
	ctx := context.Background()
	actor := domain.Actor{Name: owner}
	cfg := func(n int) domain.RunConfig {
		c, err := parseConfig(fx.survey.Dir)([]byte(fx.config(n)))
		if err != nil {
			tb.Fatal(err)
		}
		return c
	}
	if _, err := fx.svc.CreateRun(ctx, domain.CreateRun{Name: name, Config: cfg(2), Actor: actor}); err != nil {
		tb.Fatal(err)
	}
	fx.completeJob(tb, name, actor)
	if _, err := fx.svc.UpdateConfig(ctx, name, cfg(3), actor); err != nil {
		tb.Fatal(err)
	}
	fx.completeJob(tb, name, actor)
	r, err := fx.svc.LoadRun(ctx, name)
	if err != nil {
		tb.Fatal(err)
	}
	if !r.RestoreAvailable() {
		tb.Fatalf("seeded run %s is %s with backup %v; want a restorable run", name, r.Status, r.Backup != nil)
	}
	if err := fx.read.CatchUp(ctx, fx.store); err != nil {
		tb.Fatal(err)
	}
}

// completeJob requests processing and finishes the job the way the
// processing worker would, with products that list the job's images.
func (fx *fixture) completeJob(tb testing.TB, name string, actor domain.Actor) {
	tb.Helper()
	ctx := context.Background()
	res, err := fx.svc.RequestProcessing(ctx, name, false, false, actor)
	if err != nil {
		tb.Fatal(err)
	}
	job := *res.Run.Job
	var p domain.Products
	for _, img := range job.Config.Inputs.Images {
		digest, size, err := fx.arts.Put(ctx, strings.NewReader("measurements of "+img))
		if err != nil {
			tb.Fatal(err)
		}
		p.Images = append(p.Images, domain.ImageSummary{Name: path.Base(img), Path: img})
		p.Artifacts = append(p.Artifacts, domain.Artifact{Name: "measurements/" + path.Base(img) + ".parquet", Digest: digest, Size: size})
	}
	p.Figures.NImages = len(p.Images)
	for _, decide := range []func(r *domain.Run) ([]domain.Event, error){
		func(r *domain.Run) ([]domain.Event, error) { return r.StartProcessing(job.ID), nil },
		func(r *domain.Run) ([]domain.Event, error) { return r.FinishProcessing(job.ID, &p, nil), nil },
	} {
		if _, err := fx.svc.ExecRun(ctx, name, "system:processing-worker", decide); err != nil {
			tb.Fatal(err)
		}
	}
}

// head is the event store's global position.
func (fx *fixture) head(tb testing.TB) int64 {
	tb.Helper()
	p, err := fx.store.HeadPosition(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// outcome is what a request did.
type outcome struct {
	code    int
	body    []byte
	changed bool // the event store grew
}

// send serves one request with the Authorization header authz (none if
// empty) and reports what it did.
func (fx *fixture) send(tb testing.TB, method, target, authz string, body []byte) outcome {
	tb.Helper()
	fx.mu.Lock()
	defer fx.mu.Unlock()
	before := fx.head(tb)
	req := httptest.NewRequest(method, "http://piperun.test/", bytes.NewReader(body))
	// The path is set as the server would have decoded it, so that any
	// string, even one that is no valid request target, reaches the router.
	req.URL.Path, req.URL.RawPath = target, ""
	req.RequestURI = target
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	fx.h.ServeHTTP(rec, req)
	return outcome{code: rec.Code, body: rec.Body.Bytes(), changed: fx.head(tb) != before}
}

// as is the Authorization header of user.
func (fx *fixture) as(user string) string { return "Bearer " + fx.tokens[user] }

// checkSafe enforces the rules for any request: no 5xx; a rejected request
// answers a JSON {"error": ...} and changes nothing. No answer redirects:
// the router takes paths as they come.
func checkSafe(tb testing.TB, what string, o outcome) {
	tb.Helper()
	switch {
	case o.code >= 500:
		tb.Fatalf("%s: status %d: %s", what, o.code, o.body)
	case o.code >= 400:
		var e struct {
			Error string `json:"error"`
		}
		if err := json.Unmarshal(o.body, &e); err != nil || strings.TrimSpace(e.Error) == "" {
			tb.Fatalf("%s: status %d without a JSON error: %q", what, o.code, o.body)
		}
		if o.changed {
			tb.Fatalf("%s: rejected with %d (%s) but the event store changed", what, o.code, e.Error)
		}
	case o.code >= 300:
		tb.Fatalf("%s: status %d (changed %v): %s", what, o.code, o.changed, o.body)
	case o.code < 200:
		tb.Fatalf("%s: status %d", what, o.code)
	}
}

// runPath is the API path of a run as the router sees it, once the
// client's escaping is undone: a name may bring its own "/" or "..".
func runPath(name string, rest ...string) string {
	return "/api/v1/runs/" + strings.Join(append([]string{name}, rest...), "/")
}

// reset brings run name back to the state seedRun leaves, whatever the
// requests did to it: pending work is ended the way the workers would end
// it, the run is deleted and seeded again.
func (fx *fixture) reset(tb testing.TB, name, owner string) {
	tb.Helper()
	ctx := context.Background()
	for {
		r, err := fx.svc.LoadRun(ctx, name)
		if err != nil {
			tb.Fatal(err)
		}
		if !r.Exists() {
			break
		}
		var decide func(r *domain.Run) ([]domain.Event, error)
		switch {
		case r.Status == domain.StatusRestoring:
			decide = func(r *domain.Run) ([]domain.Event, error) {
				return r.FinishRestore(r.Restore.ID, errors.New("reset by the test")), nil
			}
		case r.Job != nil:
			decide = func(r *domain.Run) ([]domain.Event, error) {
				return r.FinishProcessing(r.Job.ID, nil, errors.New("reset by the test")), nil
			}
		case r.Status == domain.StatusDeleting:
			decide = func(r *domain.Run) ([]domain.Event, error) { return r.FinishDeletion(), nil }
		default:
			decide = func(r *domain.Run) ([]domain.Event, error) {
				return r.RequestDeletion(domain.Actor{Name: "root", Admin: true})
			}
		}
		if _, err := fx.svc.ExecRun(ctx, name, "system:test", decide); err != nil {
			tb.Fatal(err)
		}
	}
	fx.seedRun(tb, name, owner)
}

// products returns the SHA-256 of every product the seeded run "fz"
// references, current or backed up: the only files the API may serve.
func (fx *fixture) products(tb testing.TB) [][32]byte {
	tb.Helper()
	r, err := fx.svc.LoadRun(context.Background(), "fz")
	if err != nil {
		tb.Fatal(err)
	}
	var arts []domain.Artifact
	if r.Products != nil {
		arts = append(arts, r.Products.Artifacts...)
	}
	if r.Backup != nil {
		arts = append(arts, r.Backup.Products.Artifacts...)
	}
	var out [][32]byte
	for _, a := range arts {
		rc, err := fx.arts.Open(a.Digest)
		if err != nil {
			tb.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, sha256Of(b))
	}
	return out
}

func sha256Of(b []byte) [32]byte { return sha256.Sum256(b) }
