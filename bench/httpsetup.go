// Setting up an HTTP load run: a local server or a remote one, seeded with restorable runs.

package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/wiring"
)

// prepareLocal seeds a data directory with opts.Runs restorable runs and
// starts a server on it.
func prepareLocal(ctx context.Context, dataDir, prefix string, opts HTTPOptions, out io.Writer) (*localServer, fixture, string, error) {
	imagesDir := filepath.Join(dataDir, "images")
	if err := os.MkdirAll(imagesDir, 0o750); err != nil {
		return nil, fixture{}, "", fmt.Errorf("http benchmark: %w", err)
	}
	c, err := wiring.Open(ctx, wiring.Storage{DataDir: dataDir})
	if err != nil {
		return nil, fixture{}, "", err
	}
	start := time.Now()
	fx, err := processedFixture(ctx, c.Artifacts, imagesDir, 4)
	if err == nil {
		err = seedMany(ctx, seeder(c.Store), opts.Runs, 64, func(i int) string { return seededName(prefix, i) }, domain.Actor{Name: "alice"}, fx, func(done int) {
			fmt.Fprintf(out, "  seeded %d runs\n", done)
		})
	}
	var token string
	if err == nil {
		token, err = c.Svc.CreateUser(ctx, prefix, true, "system:bench")
	}
	if err == nil {
		err = c.Read.CatchUp(ctx, c.Store)
	}
	if err = errors.Join(err, c.Close()); err != nil {
		return nil, fixture{}, "", err
	}
	fmt.Fprintf(out, "seeded %d restorable runs in %s: each created over 4 images of a synthetic survey, processed, a 5th image added and processed in add mode (taking the backup) and completed, every step a command of the service (snapshots included) with the processing itself skipped; products are real artifacts, from processing the survey once\n",
		opts.Runs, time.Since(start).Round(time.Millisecond))
	srv, err := startLocal(ctx, dataDir, imagesDir, !opts.APIOnly, opts.CacheBytes)
	if err != nil {
		return nil, fixture{}, "", err
	}
	if opts.APIOnly {
		fmt.Fprintf(out, "API-only server (no workers, as serve --workers=false) on %s, data directory %s\n", srv.URL, dataDir)
	} else {
		fmt.Fprintf(out, "server on %s, data directory %s\n", srv.URL, dataDir)
	}
	fmt.Fprintf(out, "the server warmed its command cache with %d runs' states from the read models in %s (as serve does at start, beside serving)\n",
		srv.Warmed, srv.WarmTook.Round(time.Millisecond))
	return srv, fx, token, nil
}

// prepareRemote makes opts.Runs restorable runs on a running server
// through its API, processing each twice.
func prepareRemote(ctx context.Context, cl *client, prefix string, opts HTTPOptions, out io.Writer) (fixture, error) {
	var fx fixture
	var err error
	if fx.Before, fx.After, err = surveyConfigs(opts.ImagesDir, 4); err != nil {
		return fx, err
	}
	start := time.Now()
	var next, done atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, opts.Concurrency)
	for range min(opts.Concurrency, opts.Runs) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= opts.Runs {
					return
				}
				if err := makeRestorable(ctx, cl, seededName(prefix, i), fx); err != nil {
					errs <- err
					return
				}
				if d := done.Add(1); d%500 == 0 {
					fmt.Fprintf(out, "  prepared %d runs\n", d)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return fx, err
	}
	fmt.Fprintf(out, "prepared %d restorable runs through the API in %s: each created over 4 images of a synthetic survey, processed, a 5th image added and processed in add mode\n",
		opts.Runs, time.Since(start).Round(time.Millisecond))
	return fx, nil
}

func makeRestorable(ctx context.Context, cl *client, name string, fx fixture) error {
	steps := []struct {
		method, path string
		body         any
		want         int
		wait         bool
	}{
		{http.MethodPost, "/api/v1/runs", map[string]string{"name": name, "config": fx.Before.YAML}, http.StatusCreated, false},
		{http.MethodPost, "/api/v1/runs/" + name + "/process", map[string]bool{}, http.StatusAccepted, true},
		{http.MethodPut, "/api/v1/runs/" + name + "/config", map[string]string{"config": fx.After.YAML}, http.StatusOK, false},
		{http.MethodPost, "/api/v1/runs/" + name + "/process", map[string]bool{}, http.StatusAccepted, true},
	}
	for _, st := range steps {
		code, err := cl.do(ctx, st.method, st.path, st.body, nil)
		if err != nil {
			return err
		}
		if code != st.want {
			return fmt.Errorf("prepare run %s: %s %s: HTTP %d, want %d", name, st.method, st.path, code, st.want)
		}
		if st.wait {
			if err := waitStatus(ctx, cl, name, domain.StatusCompleted, 10*time.Minute, 20*time.Millisecond); err != nil {
				return err
			}
		}
	}
	return nil
}

// waitStatus polls run until its status is want.
func waitStatus(ctx context.Context, cl *client, run string, want domain.Status, limit, every time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		st, err := cl.runStatus(ctx, run)
		if err != nil {
			return err
		}
		switch domain.Status(st) {
		case want:
			return nil
		case domain.StatusError:
			return fmt.Errorf("run %s is in Error (see its logs)", run)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("run %s is %s after %s, want %s", run, st, limit, want)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
	}
}

func seededName(prefix string, i int) string { return fmt.Sprintf("%s-%06d", prefix, i) }
