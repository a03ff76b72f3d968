package wiring

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/piperun/piperun/internal/lease"
	"github.com/piperun/piperun/messaging"
	"github.com/piperun/piperun/messaging/kafka"
	"github.com/piperun/piperun/metrics"
	"github.com/piperun/piperun/relay"
	"github.com/piperun/piperun/workers"
)

// bus is a process's part of the event flow from the store to the
// workers.
//
// Who relays the store's log to the bus:
//   - in-process bus (no Kafka brokers): every process that runs workers,
//     since the bus reaches only its own process (checkpoint
//     "relay:gochannel", in the process's read models);
//   - Kafka: of the processes that serve the HTTP API, the one that leads
//     the relay group (kafka.RelayLeader): leadership and checkpoint live
//     in Kafka, so the replicas need no directory in common and a new
//     leader resumes where the last one's acknowledged publishes ended.
//     'piperun worker' only consumes. A worker's own appends reach the
//     topic through the leader, which follows the shared store.
type bus struct {
	relay    *relay.Relay
	leader   *kafka.RelayLeader
	watchdog *kafka.Watchdog
	store    interface {
		HeadPosition(ctx context.Context) (int64, error)
	}
	workersOnly bool
	closers     []func()
}

// startBus starts the relay, the workers' consumer and, with Kafka, the
// consumer group's watchdog, as cfg asks; goRun runs a component until the
// process stops.
func startBus(ctx context.Context, cfg Config, c *Components, m *metrics.Metrics, goRun func(string, func(context.Context) error)) (*bus, error) {
	log := cfg.Logger
	b := &bus{store: c.Store, workersOnly: cfg.Addr == ""}
	// watermill narrates every subscription at Info: keep that for debugging.
	wlog := watermill.NewSlogLoggerWithLevelMapping(log.With("component", "watermill"), map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	var wk *workers.Workers
	if cfg.Workers {
		// The leases live in <data-dir>/artifacts/leases: they make jobs
		// exclusive among processes that share one embedded data directory
		// (in-process bus). With Kafka, a run's jobs belong to the owner of
		// its partition instead (ownedSubscriber), and no lease is taken.
		leases, err := lease.Open(filepath.Join(cfg.DataDir, ArtifactsDir, "leases"))
		if err != nil {
			return nil, err
		}
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
	newRelay := func(pub message.Publisher, name, topic string) *relay.Relay {
		b.relay = &relay.Relay{Store: c.Store, Publisher: m.Publisher(pub), Topic: topic, Checkpoints: c.Read,
			Name: name, Logger: log.With("component", "relay"), Poll: cfg.Poll, OnDeadLetter: m.DeadLetter}
		m.WatchRelay(c.Store.HeadPosition, b.relayedPosition)
		return b.relay
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
		goRun("relay", newRelay(ch, "relay:gochannel", messaging.DefaultTopic).Run)
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
		r := newRelay(pub, "relay:kafka", kcfg.Topic)
		r.BatchSize = kcfg.BatchSize
		r.DeadLetterTopic = kafka.DeadLetterTopic(kcfg.Topic)
		b.leader = &kafka.RelayLeader{Config: kcfg, Relay: r, Logger: log.With("component", "relay")}
		m.WatchKafka(b.brokerUp, func() bool { return b.leader.Status().Leader })
		goRun("relay group", b.leader.Run)
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

// relayedPosition is the last position of the log known to be relayed:
// the relay's own progress while it runs, else (a standby, or a leader
// that lost the brokers) the relay group's last checkpoint this process
// saw.
func (b *bus) relayedPosition() int64 {
	st := b.relay.Status()
	if b.leader == nil || st.Running {
		return st.Published
	}
	if ls := b.leader.Status(); ls.Known {
		return max(ls.Checkpoint, st.Published)
	}
	return st.Published
}

// brokerUp reports whether the brokers answered the last attempts of the
// relay (to publish, to keep its place in the relay group) and of the
// watchdog (to read the workers' group).
func (b *bus) brokerUp() bool { return b.brokerErr() == nil }

func (b *bus) brokerErr() error {
	if b.relay != nil {
		if err := b.relay.Status().LastError; err != nil {
			var pe *messaging.PublishError
			if !errors.As(err, &pe) || slices.ContainsFunc(pe.Failed, func(f messaging.PublishFailure) bool { return !f.Permanent }) {
				return fmt.Errorf("relay cannot publish: %w", err)
			}
		}
	}
	if b.leader != nil {
		if err := b.leader.Status().BrokerErr; err != nil {
			return fmt.Errorf("relay group: %w", err)
		}
	}
	if b.watchdog != nil {
		if err := b.watchdog.BrokerErr(); err != nil {
			return err
		}
	}
	return nil
}

// ready reports the bus's part of the process's readiness, by role. A
// process that serves the API stays ready while Kafka is down: commands
// are stored, and the relay publishes them once the brokers are back, so
// taking the API out of service would only refuse work. A worker-only
// process is ready while its consumer group makes progress.
func (b *bus) ready() error {
	if b.workersOnly && b.watchdog != nil {
		return b.watchdog.Health()
	}
	return nil
}

// BusHealth is the messaging part of /healthz.
type BusHealth struct {
	// Role is "api", "worker" or "api+worker".
	Role string `json:"role"`
	// Bus is "kafka" or "in-process".
	Bus string `json:"bus"`
	// Relay is "leader", "standby" (in the relay group, another process
	// leads), "joining" (not in the group: starting, or the brokers are
	// out of reach), "local" (in-process bus) or "none".
	Relay string `json:"relay"`
	// Head is the last position of the event log; Relayed the last one
	// known relayed; Lag the difference.
	Head    int64 `json:"head"`
	Relayed int64 `json:"relayed"`
	Lag     int64 `json:"lag"`
	// Broker is "up" or "down" (Kafka only), BrokerError why.
	Broker      string `json:"broker,omitempty"`
	BrokerError string `json:"broker_error,omitempty"`
	// LastPublishError is the relay's last failure, if it has not
	// published since.
	LastPublishError string `json:"last_publish_error,omitempty"`
	// DeadLetters counts the events this process sent to the dead-letter
	// topic.
	DeadLetters int64 `json:"dead_letters"`
	// ConsumerGroup is the workers' group's progress (Kafka only).
	ConsumerGroup *kafka.GroupProgress `json:"consumer_group,omitempty"`
}

// health describes the bus for /healthz.
func (b *bus) health(ctx context.Context, cfg Config) BusHealth {
	h := BusHealth{Role: "api", Bus: "in-process", Relay: "none"}
	switch {
	case cfg.Addr == "":
		h.Role = "worker"
	case cfg.Workers:
		h.Role = "api+worker"
	}
	if head, err := b.store.HeadPosition(ctx); err == nil {
		h.Head = head
	}
	if b.relay != nil {
		st := b.relay.Status()
		h.Relay = "local"
		h.Relayed = b.relayedPosition()
		h.Lag = max(h.Head-h.Relayed, 0)
		h.DeadLetters = st.DeadLetters
		if st.LastError != nil {
			h.LastPublishError = st.LastError.Error()
		}
	}
	if len(cfg.Kafka.Brokers) > 0 {
		h.Bus = "kafka"
		if b.leader != nil {
			switch ls := b.leader.Status(); {
			case ls.Leader:
				h.Relay = "leader"
			case ls.InGroup:
				h.Relay = "standby"
			default:
				h.Relay = "joining"
			}
		}
		h.Broker = "up"
		if err := b.brokerErr(); err != nil {
			h.Broker, h.BrokerError = "down", err.Error()
		}
		if b.watchdog != nil {
			p := b.watchdog.Progress()
			h.ConsumerGroup = &p
		}
	}
	return h
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
func serveMetrics(addr string, limits HTTPLimits, m *metrics.Metrics, ready func() error, health func(context.Context) any, log *slog.Logger, goRun func(string, func(context.Context) error)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s for metrics: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "ok", "bus": health(r.Context())})
	})
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
