// A process's configuration and its validation, and the API's configuration parser.

package wiring

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/piperun/piperun/artifacts"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/handlers/api"
	"github.com/piperun/piperun/messaging/kafka"
	"github.com/piperun/piperun/runconfig"
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
	// (command.Service.CacheBytes; default command.DefaultCacheBytes).
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

// DefaultRecoverEvery is Config.RecoverEvery unless set.
const DefaultRecoverEvery = time.Minute

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
