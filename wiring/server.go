package wiring

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/handlers/api"
	"github.com/piperun/piperun/handlers/request"
	"github.com/piperun/piperun/handlers/web"
	"github.com/piperun/piperun/metrics"
)

// Run runs a piperun process until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := cfg.Logger
	c, err := Open(ctx, Storage{DataDir: cfg.DataDir, ESDBURL: cfg.ESDBURL, ArtifactsURL: cfg.ArtifactsURL, EventsPath: cfg.EventsPath})
	if err != nil {
		return err
	}
	defer func() {
		// The last process to close read models written without syncs
		// syncs them (up to the pages the kernel has not written back yet,
		// hundreds of megabytes after a long load): say why the stop takes
		// time, and whether it went wrong.
		log.Info("closing the stores (syncing the read models if this process was the last to have them open)")
		start := time.Now()
		if err := c.Close(); err != nil {
			log.Error("closing the stores failed", "err", err, "took", time.Since(start).Round(time.Millisecond))
			return
		}
		log.Info("stores closed", "took", time.Since(start).Round(time.Millisecond))
	}()
	m := metrics.New()
	c.Svc.Store = m.Store(c.Store)
	c.Svc.CacheBytes = cfg.CacheBytes

	if c.Read.Discarded() {
		log.Warn("read models discarded: they were written without syncs and the machine restarted since; rebuilding them from the event log before serving")
	}
	if err := c.Read.CatchUp(ctx, c.Store); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	goRun := func(name string, f func(context.Context) error) {
		if restartable[name] {
			f = restarting(name, f, log)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	goRun("projector", func(ctx context.Context) error { return c.Read.Run(ctx, c.Store, cfg.Poll) })
	goRun("cache warm-up", func(ctx context.Context) error { return warmCache(ctx, c, cfg.CacheWarmed, log) })
	if every := cmp.Or(cfg.SweepEvery, DefaultSweepEvery); cfg.Workers && every > 0 {
		goRun("artifact sweep", func(ctx context.Context) error { return sweepEvery(ctx, c, every, log) })
	}

	b, err := startBus(ctx, cfg, c, m, goRun)
	if err != nil {
		return err
	}
	defer b.close()

	if cfg.Addr == "" {
		if cfg.MetricsAddr != "" {
			if err := serveMetrics(cfg.MetricsAddr, cfg.HTTP, m, b.ready, func(ctx context.Context) any { return b.health(ctx, cfg) }, log, goRun); err != nil {
				return err
			}
		}
		log.Info("piperun worker running", "data_dir", cfg.DataDir, "artifacts", c.Artifacts.Location())
		if cfg.Ready != nil {
			cfg.Ready <- ""
		}
		select {
		case <-ctx.Done():
		case err := <-errs:
			cancel()
			wg.Wait()
			return err
		}
		cancel()
		wg.Wait()
		return nil
	}

	// One Authenticator and one Positions for the API and the pages: one
	// token cache, one catch-up of the read models at a time.
	auth := &request.Authenticator{Read: c.Read, Store: c.Svc.Store}
	positions := &request.Positions{Read: c.Read, Store: c.Svc.Store, Logger: log}
	parseConfig := ParseConfig(cfg.ImagesDir)
	apiServer := &api.Server{
		Svc: c.Svc, Read: c.Read, ParseConfig: parseConfig, Auth: auth, Positions: positions, Logger: log, Artifacts: c.Artifacts,
		Ready:  func(ctx context.Context) error { return ready(ctx, c, b) },
		Health: func(ctx context.Context) any { return b.health(ctx, cfg) },
	}
	router := api.NewRouter()
	if err := apiServer.Register(router); err != nil {
		return fmt.Errorf("API: %w", err)
	}
	router.Handle("/metrics", m.Handler()).Methods(http.MethodGet)
	var sessionKey []byte
	switch {
	case cfg.SessionKeyFile == "" && cfg.ESDBURL != "":
		// Replicas on a network event store share no disk: the key lives
		// in the store.
		sessionKey, err = storeSessionKey(ctx, c.Store)
	case cfg.SessionKeyFile == "":
		sessionKey, err = web.LoadKey(filepath.Join(cfg.DataDir, web.KeyFile))
	default:
		sessionKey, err = web.LoadKey(cfg.SessionKeyFile)
	}
	if err != nil {
		return err
	}
	limits := cfg.HTTP.withDefaults()
	pages := &web.Server{
		Svc: c.Svc, Read: c.Read, ParseConfig: parseConfig, Auth: auth, Positions: positions,
		Key: sessionKey, Logger: log, SessionIdle: cfg.SessionIdle,
		MaxStreams: cfg.MaxStreams, MaxStreamsPerUser: cfg.MaxStreamsPerUser, StreamWriteTimeout: limits.WriteTimeout,
	}
	if err := pages.Register(router); err != nil {
		return fmt.Errorf("web pages: %w", err)
	}
	defer pages.Close()

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	url := "http://" + ln.Addr().String()
	if err := firstStartAdmin(ctx, c, cfg.Stdout, url); err != nil {
		ln.Close()
		return err
	}
	srv := newHTTPServer(router, limits)
	srv.RegisterOnShutdown(pages.Close) // live page streams would hold Shutdown up
	goRun("http server", func(ctx context.Context) error {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	log.Info("piperun serving", "url", url, "data_dir", cfg.DataDir, "images_dir", cfg.ImagesDir, "artifacts", c.Artifacts.Location())
	if cfg.Ready != nil {
		cfg.Ready <- ln.Addr().String()
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
	}
	shutCtx, shutCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer shutCancel()
	_ = srv.Shutdown(shutCtx)
	cancel()
	wg.Wait()
	return runErr
}

// warmCache fills the command cache with the runs' states from the read
// models, the most recently updated first, until the cache is full
// (command.Service.CacheBytes). Without it, the first command on each run after
// a start reads and decodes the run's snapshot and events. It runs beside
// the service: commands do not wait for it, and the states they cache are
// not replaced by it. A failure only leaves the cache cold.
func warmCache(ctx context.Context, c *Components, done func(int, time.Duration), log *slog.Logger) error {
	start := time.Now()
	var err error
	n := c.Svc.WarmCache(func(yield func(domain.Run) bool) {
		err = c.Read.EachRunState(ctx, yield)
	})
	took := time.Since(start)
	if err != nil && ctx.Err() == nil {
		log.Warn("command cache warm-up stopped", "runs", n, "err", err)
	}
	runs, bytes := c.Svc.CacheSize()
	log.Info("command cache warmed from the read models", "runs", n, "took", took.Round(time.Millisecond), "cached_runs", runs, "cached_bytes", bytes)
	if done != nil {
		done(n, took)
	}
	return nil
}

// restartable names the components that tail the event log from a
// checkpoint. When one fails (its database cannot be written, the disk is
// full) it is started again after a pause instead of ending the process,
// so that the service recovers once the cause has passed.
var restartable = map[string]bool{"projector": true, "relay": true}

// restarting runs f again after each failure, with a growing pause, until
// ctx ends.
func restarting(name string, f func(context.Context) error, log *slog.Logger) func(context.Context) error {
	return func(ctx context.Context) error {
		backoff := 200 * time.Millisecond
		for {
			err := f(ctx)
			if err == nil || ctx.Err() != nil {
				return err
			}
			log.Error(name+" failed; restarting it", "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 10*time.Second)
		}
	}
}

// firstStartAdmin creates an administrator when there is no user at all,
// and prints its token once.
func firstStartAdmin(ctx context.Context, c *Components, out io.Writer, url string) error {
	n, err := c.Read.CountUsers(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	token, err := c.Svc.CreateUser(ctx, "admin", true, "system:first-start")
	if errors.Is(err, domain.ErrExists) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create the first administrator: %w", err)
	}
	fmt.Fprintf(out, "piperun: created administrator \"admin\"; its API token (shown only now) is:\n\n    %s\n\nOpen %s and sign in with it, or use it with the CLI:\n    export PIPERUN_SERVER=%s PIPERUN_TOKEN=%s\n\n", token, url, url, token)
	return nil
}

// ready reports whether the process can serve: the event store answers
// and the read models are close to the log's head (see bus.ready for the
// messaging's part, which depends on the process's role).
func ready(ctx context.Context, c *Components, b *bus) error {
	head, err := c.Store.HeadPosition(ctx)
	if err != nil {
		return fmt.Errorf("event store: %w", err)
	}
	if lag := head - c.Read.Position(); lag > 10000 {
		return fmt.Errorf("read models are %d events behind", lag)
	}
	return b.ready()
}
