package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/piperun/piperun/handlers/workers"
	"github.com/piperun/piperun/internal/lease"
	"github.com/piperun/piperun/messaging"
	"github.com/piperun/piperun/messaging/kafka"
	"github.com/piperun/piperun/metrics"
)

// bus is a process's part of the event flow from the store to the
// workers.
//
// Who relays the store's log to the bus:
//   - in-process bus (no Kafka brokers): every process that runs workers,
//     since the bus reaches only its own process (checkpoint
//     "relay:gochannel");
//   - Kafka: every process that serves the HTTP API (checkpoint
//     "relay:kafka"); 'piperun worker' only consumes. Replicas on one data
//     directory share the checkpoint and each publish the log, so an event
//     may be on the topic more than once: consumers recognise copies by
//     ce_id, and the workers' handler is guarded (kafka.Dedupe) besides
//     being idempotent. A worker's own appends reach the topic through the
//     API replicas' relays, which poll the shared store.
type bus struct {
	relay    *messaging.Relay
	watchdog *kafka.Watchdog
	closers  []func()
}

// startBus starts the relay, the workers' consumer and, with Kafka, the
// consumer group's watchdog, as cfg asks; goRun runs a component until the
// process stops.
func startBus(ctx context.Context, cfg Config, c *Components, m *metrics.Metrics, goRun func(string, func(context.Context) error)) (*bus, error) {
	log := cfg.Logger
	b := &bus{}
	// watermill narrates every subscription at Info: keep that for debugging.
	wlog := watermill.NewSlogLoggerWithLevelMapping(log.With("component", "watermill"), map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	// The leases live in <data-dir>/artifacts/leases: they make jobs
	// exclusive among processes that share one embedded data directory
	// (in-process bus), and the relay among processes that share it with
	// Kafka. With Kafka, a run's jobs belong to the owner of its partition
	// instead (ownedSubscriber), which needs no shared directory.
	leases, err := lease.Open(filepath.Join(cfg.DataDir, ArtifactsDir, "leases"))
	if err != nil {
		return nil, err
	}
	var wk *workers.Workers
	if cfg.Workers {
		wk = &workers.Workers{
			Leases:        leases,
			Svc:           c.Svc,
			Process:       processFunc(c.Artifacts, cfg.ImagesDir),
			Artifacts:     c.Artifacts,
			Runs:          c.Read,
			Refs:          c.Read,
			Logger:        log.With("component", "workers"),
			OnRestoreDone: m.RestoreDone,
		}
		b.closers = append(b.closers, wk.Close)
	}
	// newRelay relays the log to pub. An exclusive relay runs only while
	// this process holds the topic's relay lease: of the processes sharing
	// the artifacts directory one publishes, the others stand by and take
	// over when it dies (the new one publishes from its own checkpoint, so
	// a takeover may repeat events, which consumers drop by id).
	newRelay := func(pub message.Publisher, name, topic string, exclusive bool) {
		b.relay = &messaging.Relay{Store: c.Store, Publisher: m.Publisher(pub), Topic: topic, Checkpoints: c.Read,
			Name: name, Logger: log.With("component", "relay"), Poll: cfg.Poll}
		relay := b.relay
		var active atomic.Bool
		active.Store(!exclusive)
		m.WatchRelay(c.Store.HeadPosition, func() int64 {
			if !active.Load() { // standing by: nothing of its own to publish
				h, _ := c.Store.HeadPosition(context.Background())
				return h
			}
			p, _ := relay.Status()
			return p
		})
		run := relay.Run
		if exclusive {
			run = func(ctx context.Context) error {
				held, err := awaitLease(ctx, leases, "relay-"+leaseName(topic), log)
				if held == nil {
					return err
				}
				defer held.Release(false)
				active.Store(true)
				defer active.Store(false)
				log.Info("relaying to Kafka: this process holds the relay lease", "topic", topic)
				return relay.Run(ctx)
			}
		}
		goRun("relay", run)
	}

	if len(cfg.Kafka.Brokers) == 0 {
		if wk == nil {
			return b, nil
		}
		ch := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, wlog)
		router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, wlog)
		if err != nil {
			return nil, fmt.Errorf("create message router: %w", err)
		}
		router.AddConsumerHandler("piperun-workers", messaging.DefaultTopic, ch, wk.Handle).AddMiddleware(m.Middleware)
		goRun("message router", router.Run)
		select {
		case <-router.Running():
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		b.closers = append(b.closers, func() { router.Close() })
		newRelay(ch, "relay:gochannel", messaging.DefaultTopic, false)
		recoverPending(wk, cmp.Or(cfg.RecoverEvery, DefaultRecoverEvery), log, goRun)
		return b, nil
	}

	kcfg := cfg.Kafka
	klog := log.With("component", "kafka")
	wd, err := kafka.NewWatchdog(kcfg, klog)
	if err != nil {
		return nil, err
	}
	b.watchdog = wd
	goRun("kafka watchdog", wd.Run)
	if cfg.Addr != "" {
		pub, err := kafka.NewPublisher(kcfg, klog)
		if err != nil {
			return nil, err
		}
		b.closers = append(b.closers, func() { pub.Close() })
		newRelay(pub, "relay:kafka", kcfg.Topic, true)
	}
	if wk == nil {
		return b, nil
	}
	// A run's work is the worker's that owns its partition, not the
	// holder of a lease in a shared directory.
	wk.Leases = nil
	sub, err := ownedSubscriber(kcfg, wk, c, klog, goRun)
	if err != nil {
		return nil, err
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, wlog)
	if err != nil {
		return nil, fmt.Errorf("create message router: %w", err)
	}
	guard := &kafka.Dedupe{OnDuplicate: m.Duplicate}
	router.AddConsumerHandler(kcfg.ConsumerGroup, kcfg.Topic, sub, wk.Handle).AddMiddleware(m.Middleware, guard.Middleware)
	// Kafka keeps the messages until the group takes them: the process need
	// not wait for the broker, only the consumer does.
	goRun("kafka consumer", func(ctx context.Context) error {
		if err := awaitTopic(ctx, kcfg, klog); err != nil {
			return err
		}
		return router.Run(ctx)
	})
	recoverPending(wk, cmp.Or(cfg.RecoverEvery, DefaultRecoverEvery), log, goRun)
	return b, nil
}

// awaitLease takes the lease on name, trying again every second until it
// can or ctx ends (then it returns nil and ctx's error, or nil for a
// clean stop).
func awaitLease(ctx context.Context, leases *lease.Dir, name string, log *slog.Logger) (*lease.Lease, error) {
	waiting := false
	for {
		l, ok, err := leases.TryAcquire(name)
		if err != nil {
			return nil, err
		}
		if ok {
			return l, nil
		}
		if !waiting {
			log.Info("standing by: another process holds the lease", "lease", name)
			waiting = true
		}
		select {
		case <-ctx.Done():
			return nil, nil
		case <-time.After(time.Second):
		}
	}
}

// leaseName makes a Kafka topic name (letters, digits, '.', '_', '-') a
// lease file name.
func leaseName(topic string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' {
			return '_'
		}
		return r
	}, topic)
}

// recoverPending re-drives the work a previous process left pending, in
// the background (a slow backup check must not keep the API from serving),
// at the start and then every interval: the workers' leases tell a job a
// live process runs, which is left alone, from one whose process died,
// which is taken up. A failure is logged and tried again next time.
func recoverPending(wk *workers.Workers, interval time.Duration, log *slog.Logger, goRun func(string, func(context.Context) error)) {
	goRun("recover", func(ctx context.Context) error {
		for {
			if err := wk.Recover(ctx); err != nil && ctx.Err() == nil {
				log.Error("recover pending work", "err", err)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(interval):
			}
		}
	})
}

// close releases the bus once its goroutines have stopped.
func (b *bus) close() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
}

// health reports a relay that cannot publish and a consumer group that
// does not progress.
func (b *bus) health() error {
	var errs []error
	if b.relay != nil {
		if _, err := b.relay.Status(); err != nil {
			errs = append(errs, fmt.Errorf("relay cannot publish: %w", err))
		}
	}
	if b.watchdog != nil {
		errs = append(errs, b.watchdog.Health())
	}
	return errors.Join(errs...)
}

// awaitTopic creates the topic if missing, waiting for the brokers as long
// as it takes.
func awaitTopic(ctx context.Context, cfg kafka.Config, log *slog.Logger) error {
	backoff := 500 * time.Millisecond
	for {
		err := kafka.EnsureTopic(ctx, cfg, "")
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		log.Error("kafka is not reachable; will retry", "brokers", cfg.Brokers, "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// serveMetrics serves /metrics, /healthz and /readyz on addr, for a
// process without the HTTP API.
func serveMetrics(addr string, limits HTTPLimits, m *metrics.Metrics, ready func() error, log *slog.Logger, goRun func(string, func(context.Context) error)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s for metrics: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	srv := newHTTPServer(mux, limits)
	goRun("metrics server", func(ctx context.Context) error {
		go func() {
			<-ctx.Done()
			shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(shut)
		}()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	log.Info("piperun metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	return nil
}
