package metrics

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/piperun/piperun/eventstore"
	"github.com/piperun/piperun/messaging"
	"github.com/piperun/piperun/relay"
)

// Metrics holds the process's collectors. Its methods are safe for
// concurrent use.
type Metrics struct {
	reg           *prometheus.Registry
	appended      *prometheus.CounterVec
	published     prometheus.Counter
	publishErrors prometheus.Counter
	consumed      *prometheus.CounterVec
	duplicates    prometheus.Counter
	handlerErrors *prometheus.CounterVec
	restores      *prometheus.HistogramVec
	deadLetters   prometheus.Counter
}

// New returns the metrics of a process, registered on a registry of their
// own (with the Go runtime's and the process's), so that several servers
// in one test binary do not collide.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		appended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "piperun_events_appended_total",
			Help: "Events appended to the event store by this process, by event type.",
		}, []string{"type"}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "piperun_relay_published_total",
			Help: "Run events the relay of this process published and the broker acknowledged.",
		}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "piperun_relay_publish_errors_total",
			Help: "Publish calls of the relay that failed, wholly or partly (the events are retried, or dead-lettered when they can never be published).",
		}),
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "piperun_messages_consumed_total",
			Help: "Run event messages delivered to the workers of this process, redeliveries included, by event type.",
		}, []string{"type"}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "piperun_messages_duplicate_total",
			Help: "Messages skipped because this process had already handled that event or a newer one of its run.",
		}),
		handlerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "piperun_handler_errors_total",
			Help: "Messages whose handling failed (they are redelivered), by event type.",
		}, []string{"type"}),
		restores: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "piperun_restore_duration_seconds",
			Help:    "Time from a restore's start by a worker to its RunRestored or RestoreFailed, by outcome.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"outcome"}),
	}
	m.deadLetters = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "piperun_relay_dead_letters_total",
		Help: "Run events the relay of this process could not publish (too large, invalid) and sent to the dead-letter topic.",
	})
	m.reg.MustRegister(m.deadLetters, m.appended, m.published, m.publishErrors, m.consumed, m.duplicates, m.handlerErrors, m.restores,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is where the collectors are registered, for adding more.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// WatchRelay registers the relay's lag, in positions of the global log
// (head minus the last position the relay published), computed at scrape
// time. head is the store's HeadPosition; published reports the relay's
// progress (relay.Relay.Status).
func (m *Metrics) WatchRelay(head func(ctx context.Context) (int64, error), published func() int64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "piperun_relay_lag_events",
		Help: "Positions of the global event log not yet relayed: by this process's relay, or (Kafka, standing by) by the relay group's leader as last seen.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		h, err := head(ctx)
		if err != nil {
			return -1 // visible, and never mistaken for "caught up"
		}
		return float64(max(h-published(), 0))
	}))
}

// DeadLetter counts an event sent to the dead-letter topic; it fits
// relay.Relay.OnDeadLetter.
func (m *Metrics) DeadLetter(relay.DeadLetter) { m.deadLetters.Inc() }

// WatchKafka registers, computed at scrape time, whether the brokers
// answer this process (piperun_kafka_up) and whether it leads the relay
// group (piperun_relay_leader).
func (m *Metrics) WatchKafka(up, leader func() bool) {
	gauge := func(f func() bool) func() float64 {
		return func() float64 {
			if f() {
				return 1
			}
			return 0
		}
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "piperun_kafka_up",
		Help: "1 while the Kafka brokers answer this process's relay and watchdog, else 0.",
	}, gauge(up)), prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "piperun_relay_leader",
		Help: "1 while this process leads the relay group and publishes the log to Kafka, else 0.",
	}, gauge(leader)))
}

// RestoreDone records a restore's duration; it fits
// workers.Workers.OnRestoreDone.
func (m *Metrics) RestoreDone(d time.Duration, ok bool) {
	outcome := "restored"
	if !ok {
		outcome = "failed"
	}
	m.restores.WithLabelValues(outcome).Observe(d.Seconds())
}

// Duplicate counts a skipped duplicate; it fits kafka.Dedupe.OnDuplicate.
func (m *Metrics) Duplicate(*message.Message) { m.duplicates.Inc() }

// Middleware counts the messages a handler receives and those it fails.
func (m *Metrics) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		typ := typeLabel(msg.Metadata.Get(messaging.MetaType))
		m.consumed.WithLabelValues(typ).Inc()
		out, err := h(msg)
		if err != nil {
			m.handlerErrors.WithLabelValues(typ).Inc()
		}
		return out, err
	}
}

// Publisher counts the publishes through p.
func (m *Metrics) Publisher(p message.Publisher) message.Publisher {
	return countingPublisher{Publisher: p, m: m}
}

type countingPublisher struct {
	message.Publisher
	m *Metrics
}

func (p countingPublisher) Publish(topic string, msgs ...*message.Message) error {
	if err := p.Publisher.Publish(topic, msgs...); err != nil {
		p.m.publishErrors.Inc()
		var pe *messaging.PublishError
		if errors.As(err, &pe) {
			p.m.published.Add(float64(len(msgs) - len(pe.Failed)))
		}
		return err
	}
	p.m.published.Add(float64(len(msgs)))
	return nil
}

// Store counts the events appended through s.
func (m *Metrics) Store(s eventstore.Store) eventstore.Store {
	return countingStore{Store: s, m: m}
}

type countingStore struct {
	eventstore.Store
	m *Metrics
}

func (s countingStore) Append(ctx context.Context, stream string, expected int64, events ...eventstore.EventData) (int64, int64, error) {
	v, p, err := s.Store.Append(ctx, stream, expected, events...)
	if err == nil {
		for _, e := range events {
			s.m.appended.WithLabelValues(typeLabel(e.Type)).Inc()
		}
	}
	return v, p, err
}

// eventType is the shape of piperun's event type names; anything else (a
// message some other producer wrote to the topic) is counted as "other" so
// that the label's values stay few.
var eventType = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*\.v[0-9]+$`)

func typeLabel(t string) string {
	if len(t) > 64 || !eventType.MatchString(t) {
		return "other"
	}
	return t
}
