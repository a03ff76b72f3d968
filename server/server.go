package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	msqlite "modernc.org/sqlite"

	"github.com/piperun/piperun/app"
	"github.com/piperun/piperun/artifacts"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/eventstore"
	"github.com/piperun/piperun/eventstore/esdb"
	"github.com/piperun/piperun/eventstore/sqlite"
	"github.com/piperun/piperun/handlers/api"
	"github.com/piperun/piperun/handlers/web"
	"github.com/piperun/piperun/handlers/workers"
	"github.com/piperun/piperun/messaging/kafka"
	"github.com/piperun/piperun/metrics"
	"github.com/piperun/piperun/projections"
	"github.com/piperun/piperun/runconfig"
)

// Files and folders of a data directory.
const (
	EventsFile    = "events.db"
	ReadModelFile = "read.db"
	ArtifactsDir  = "artifacts"
)

// Config configures a piperun process.
type Config struct {
	// DataDir holds the event store, read models and artifacts.
	DataDir string
	// ESDBURL selects EventStoreDB as the event store instead of the
	// embedded one in DataDir.
	ESDBURL string
	// ArtifactsURL is where the products are stored (see
	// artifacts.ParseLocation): an s3:// bucket URL for processes that
	// share no disk; default the directory <DataDir>/artifacts.
	ArtifactsURL string
	// EventsPath is the embedded event store's file (default
	// <DataDir>/events.db); see Storage.EventsPath.
	EventsPath string
	// SessionKeyFile holds the key of the web pages' session cookies.
	// By default it is <DataDir>/session.key with the embedded store, and
	// with EventStoreDB the key is kept in the store itself (see
	// storeSessionKey), so that API replicas behind one address, which
	// must share it, need no file in common.
	SessionKeyFile string
	// SessionIdle ends a web session unused for this long (default
	// web.DefaultSessionIdle).
	SessionIdle time.Duration
	// Addr is the HTTP listen address; empty for a worker-only process.
	Addr string
	// ImagesDir is the root that input paths are relative to.
	ImagesDir string
	// Workers runs the processing and restore workers in this process.
	Workers bool
	// Kafka carries the run events between processes when Kafka.Brokers
	// is set; otherwise an in-process bus does (see bus for who relays).
	Kafka kafka.Config
	// MetricsAddr, for a process without Addr, is where /metrics,
	// /healthz and /readyz are served (none if empty). With Addr they are
	// served there.
	MetricsAddr string
	// Poll is how often the log is re-read for other processes' appends.
	Poll time.Duration
	// RecoverEvery is how often a process with workers looks for work left
	// pending by a process that died (default DefaultRecoverEvery).
	RecoverEvery time.Duration
	// SweepEvery is how often a process with workers deletes the stored
	// artifacts no run uses that are older than DefaultSweepGrace
	// (default DefaultSweepEvery; negative: never).
	SweepEvery time.Duration
	// CacheBytes bounds the run states kept in memory for commands
	// (app.Service.CacheBytes; default app.DefaultCacheBytes).
	CacheBytes int
	// Logger receives the service's own log (not the runs' logs).
	Logger *slog.Logger
	// Stdout receives the first-start admin token and the URL.
	Stdout io.Writer
	// Ready, if set, receives the bound address once the service serves.
	Ready chan<- string
	// HTTP bounds every connection of the HTTP API and of the metrics
	// server (zero fields: the Default* values of HTTPLimits).
	HTTP HTTPLimits
	// MaxStreams and MaxStreamsPerUser bound the web pages' live streams,
	// in all and per user (zero: web.DefaultMaxStreams and
	// web.DefaultMaxStreamsPerUser).
	MaxStreams, MaxStreamsPerUser int
	// CacheWarmed, if set, is called once the command cache has been
	// warmed from the read models (see warmCache), with the runs taken in.
	CacheWarmed func(runs int, took time.Duration)
}

// Validate checks the configuration and fills defaults.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("a data directory is required")
	}
	if c.ImagesDir == "" {
		c.ImagesDir = "."
	}
	abs, err := filepath.Abs(c.ImagesDir)
	if err != nil {
		return fmt.Errorf("images directory %s: %w", c.ImagesDir, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return fmt.Errorf("images directory: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("images directory %s is not a directory", abs)
	}
	c.ImagesDir = abs
	if c.ArtifactsURL != "" {
		if _, err := artifacts.ParseLocation(c.ArtifactsURL); err != nil {
			return fmt.Errorf("artifacts URL: %w", err)
		}
	}
	if c.Poll <= 0 {
		c.Poll = 200 * time.Millisecond
	}
	if len(c.Kafka.Brokers) > 0 {
		if err := c.Kafka.Validate(); err != nil {
			return err
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if c.Stdout == nil {
		c.Stdout = os.Stdout
	}
	return nil
}

// Storage says where a process keeps its state.
type Storage struct {
	// DataDir holds the read models and the artifacts, and the embedded
	// event store unless ESDBURL is set.
	DataDir string
	// ESDBURL selects EventStoreDB as the event store
	// ("esdb://host:2113?tls=false").
	ESDBURL string
	// ArtifactsURL is where the products are stored (Config.ArtifactsURL).
	ArtifactsURL string
	// EventsPath is the embedded event store's file (default
	// <DataDir>/events.db). API replicas on one host may share it, each
	// with read models of its own in its DataDir.
	EventsPath string
}

// Components are the opened parts of a data directory.
type Components struct {
	Store     eventstore.Store
	Read      *projections.Store
	Artifacts *artifacts.Store
	Svc       *app.Service
}

// Open opens (creating if needed) the stores of a data directory.
func Open(ctx context.Context, st Storage) (*Components, error) {
	dataDir := st.DataDir
	if dataDir == "" {
		return nil, errors.New("a data directory is required")
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	store, err := openEventStore(ctx, st)
	if err != nil {
		return nil, err
	}
	read, err := projections.Open(ctx, filepath.Join(dataDir, ReadModelFile))
	if err != nil {
		store.Close()
		return nil, err
	}
	arts, err := artifacts.Open(ctx, cmp.Or(st.ArtifactsURL, filepath.Join(dataDir, ArtifactsDir)))
	if err != nil {
		read.Close()
		store.Close()
		return nil, err // it names the store and says what failed
	}
	svc := app.New(store)
	// The projector takes the states the commands of this process have
	// just appended from their cache, instead of reading them back.
	read.Hints = svc
	return &Components{Store: store, Read: read, Artifacts: arts, Svc: svc}, nil
}

// Close closes the stores.
func (c *Components) Close() error {
	return errors.Join(c.Read.Close(), c.Store.Close(), c.Artifacts.Close())
}

// AddUser creates a user in a data directory and returns its API token. It
// works whether or not a server is running on the directory.
func AddUser(ctx context.Context, st Storage, name string, admin bool) (string, error) {
	c, err := Open(ctx, st)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.Svc.CreateUser(ctx, name, admin, "system:cli")
}

// DefaultSweepGrace is how old an unused artifact must be before a sweep
// deletes it; DefaultSweepEvery how often a server with workers sweeps.
const (
	DefaultSweepGrace = 24 * time.Hour
	DefaultSweepEvery = 6 * time.Hour
)

// DefaultRecoverEvery is Config.RecoverEvery unless set.
const DefaultRecoverEvery = time.Minute

// sweepEvery runs an artifact sweep every interval until ctx ends; a sweep
// that fails or skips is logged and tried again at the next interval.
func sweepEvery(ctx context.Context, c *Components, interval time.Duration, log *slog.Logger) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		rep, err := workers.Sweep(ctx, c.Store, c.Read, c.Artifacts, DefaultSweepGrace, log)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("artifact sweep failed", "err", err)
		case rep.Skipped != "":
			log.Info("artifact sweep deleted nothing", "reason", rep.Skipped)
		default:
			log.Info("artifact sweep done", "examined", rep.Examined, "deleted", rep.Deleted, "bytes", rep.Bytes)
		}
	}
}

// SweepArtifacts brings the read models up to the log's head, then deletes
// the stored artifacts no run uses that are older than grace (see
// workers.Sweep), and reports to out. It is safe while a server runs on the
// same data directory.
func SweepArtifacts(ctx context.Context, st Storage, grace time.Duration, out io.Writer) (workers.SweepReport, error) {
	c, err := Open(ctx, st)
	if err != nil {
		return workers.SweepReport{}, err
	}
	defer c.Close()
	if err := c.Read.CatchUp(ctx, c.Store); err != nil {
		return workers.SweepReport{}, fmt.Errorf("sweep artifacts: %w", err)
	}
	rep, err := workers.Sweep(ctx, c.Store, c.Read, c.Artifacts, grace, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return rep, err
	}
	if rep.Skipped != "" {
		fmt.Fprintf(out, "deleted nothing: %s; try again later\n", rep.Skipped)
		return rep, nil
	}
	fmt.Fprintf(out, "examined %d stored files older than %s; deleted %d that no run uses (%d bytes)\n", rep.Examined, grace, rep.Deleted, rep.Bytes)
	return rep, nil
}

// RebuildProjections drops the read models and rebuilds them from the
// event log, reporting progress to out.
func RebuildProjections(ctx context.Context, st Storage, out io.Writer) error {
	c, err := Open(ctx, st)
	if err != nil {
		return err
	}
	defer c.Close()
	head, err := c.Store.HeadPosition(ctx)
	if err != nil {
		return fmt.Errorf("rebuild projections: %w", err)
	}
	if err := c.Read.Reset(ctx); err != nil {
		return err
	}
	start := time.Now()
	fmt.Fprintf(out, "rebuilding read models from %d events\n", head)
	if err := c.Read.CatchUp(ctx, c.Store); err != nil {
		return err
	}
	d := time.Since(start)
	rate := float64(head) / max(d.Seconds(), 1e-9)
	fmt.Fprintf(out, "rebuilt read models at position %d in %s (%.0f events/s)\n", c.Read.Position(), d.Round(time.Millisecond), rate)
	return nil
}

// ParseConfig returns the API's configuration parser for an images root.
// Problems with the configuration are domain.ErrInvalid (HTTP 400) and keep
// the *runconfig.ValidationError for callers that list them per field; a
// broken images root is the service's fault and stays a plain error.
func ParseConfig(imagesRoot string) api.ConfigParser {
	return func(text []byte) (domain.RunConfig, error) {
		c, err := runconfig.Parse(text)
		if err == nil {
			err = c.CheckPaths(imagesRoot, true)
		}
		var verr *runconfig.ValidationError
		if errors.As(err, &verr) {
			return domain.RunConfig{}, fmt.Errorf("%w: configuration: %w", domain.ErrInvalid, err)
		}
		if err != nil {
			return domain.RunConfig{}, fmt.Errorf("check configuration against the images directory: %w", err)
		}
		return c.Domain(), nil
	}
}

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

	apiServer := &api.Server{
		Svc: c.Svc, Read: c.Read, ParseConfig: ParseConfig(cfg.ImagesDir), Logger: log, Artifacts: c.Artifacts,
		Ready:  func(ctx context.Context) error { return ready(ctx, c, b) },
		Health: func(ctx context.Context) any { return b.health(ctx, cfg) },
	}
	router := api.NewRouter()
	apiServer.Register(router)
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
		API: apiServer, Key: sessionKey, Logger: log, SessionIdle: cfg.SessionIdle,
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
// (app.Service.CacheBytes). Without it, the first command on each run after
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

// openEventStore opens EventStoreDB when a URL is given, else the
// embedded SQLite store in the data directory.
func openEventStore(ctx context.Context, st Storage) (eventstore.Store, error) {
	if st.ESDBURL != "" {
		store, err := esdb.OpenWith(ctx, st.ESDBURL, esdb.Options{StreamPrefixes: []string{"run-", "user-"}})
		if err != nil {
			return nil, fmt.Errorf("open EventStoreDB event store: %w", err)
		}
		return store, nil
	}
	// Commit with fdatasync, as SQLite's C build does on Linux: it syncs
	// the data and the metadata needed to read it back, so an acknowledged
	// append survives power loss at about half the cost of fsync. Where
	// the platform lacks it, SQLite keeps using fsync.
	_, _ = msqlite.Fdatasync(true)
	path := st.EventsPath
	if path == "" {
		path = filepath.Join(st.DataDir, EventsFile)
	}
	store, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		return nil, fmt.Errorf("open event store: %w", err)
	}
	return store, nil
}
