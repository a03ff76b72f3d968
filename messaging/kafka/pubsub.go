package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
)

// Publisher publishes run events to Kafka. It connects on first use and
// again after any failure, so a broker that is down when piperun starts,
// or that restarts, only delays publishing: the caller (the relay) sees
// the error, keeps its checkpoint and retries. It is safe for concurrent
// use; publishes are serialised, which keeps them in order.
type Publisher struct {
	cfg    Config
	logger watermill.LoggerAdapter

	mu     sync.Mutex
	pub    *wkafka.Publisher
	closed bool
}

var _ message.Publisher = (*Publisher)(nil)

// NewPublisher checks cfg and returns a publisher; it does not connect yet.
func NewPublisher(cfg Config, logger *slog.Logger) (*Publisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Publisher{cfg: cfg, logger: wmLogger(logger)}, nil
}

// Publish sends msgs in order to topic (the configured one if empty) and
// returns once every one was acknowledged by all in-sync replicas. On
// failure, the messages before the failing one are stored and the rest
// are not.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	if topic == "" {
		topic = p.cfg.Topic
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("kafka publisher is closed")
	}
	if p.pub == nil {
		if err := EnsureTopic(context.Background(), p.cfg, topic); err != nil {
			return err
		}
		pub, err := wkafka.NewPublisher(wkafka.PublisherConfig{
			Brokers:               p.cfg.Brokers,
			Marshaler:             Marshaler{},
			OverwriteSaramaConfig: p.cfg.producerConfig(),
		}, p.logger)
		if err != nil {
			return fmt.Errorf("connect to kafka %v: %w", p.cfg.Brokers, err)
		}
		p.pub = pub
	}
	if err := p.pub.Publish(topic, msgs...); err != nil {
		// Start afresh next time: a producer whose broker went away may
		// hold stale connections and sequence numbers. A message that did
		// reach the broker is then sent again, a duplicate the consumers
		// recognise by its ce_id.
		_ = p.pub.Close()
		p.pub = nil
		return fmt.Errorf("publish to kafka topic %s: %w", topic, err)
	}
	return nil
}

// Close closes the connection, if any.
func (p *Publisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.pub == nil {
		return nil
	}
	err := p.pub.Close()
	p.pub = nil
	return err
}

// NewSubscriber returns a subscriber in cfg's consumer group, starting at
// the oldest offset when the group has committed none. A message is
// committed once the handler acks it; a nacked message is redelivered.
// The topic must exist when Subscribe is called (see EnsureTopic).
func NewSubscriber(cfg Config, logger *slog.Logger) (message.Subscriber, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sub, err := wkafka.NewSubscriber(wkafka.SubscriberConfig{
		Brokers:               cfg.Brokers,
		Unmarshaler:           Marshaler{},
		OverwriteSaramaConfig: cfg.consumerConfig(),
		ConsumerGroup:         cfg.ConsumerGroup,
		NackResendSleep:       500 * time.Millisecond,
		ReconnectRetrySleep:   time.Second,
	}, wmLogger(logger))
	if err != nil {
		return nil, fmt.Errorf("kafka subscriber: %w", err)
	}
	return sub, nil
}

// EnsureTopic creates topic (cfg.Topic if empty) with cfg's partition
// count and replication factor unless it exists.
func EnsureTopic(ctx context.Context, cfg Config, topic string) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if topic == "" {
		topic = cfg.Topic
	}
	done := make(chan error, 1)
	// sarama takes no context: run it aside and stop waiting when ctx ends
	// (its own timeouts bound the call).
	go func() {
		admin, err := sarama.NewClusterAdmin(cfg.Brokers, cfg.baseConfig())
		if err != nil {
			done <- fmt.Errorf("connect to kafka %v: %w", cfg.Brokers, err)
			return
		}
		defer admin.Close()
		rf := cfg.ReplicationFactor
		if rf == 0 {
			rf = -1 // the broker's default
		}
		err = admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: cfg.Partitions, ReplicationFactor: rf}, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			done <- fmt.Errorf("create kafka topic %s: %w", topic, err)
			return
		}
		done <- nil
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// wmLogger adapts the service log for watermill, which narrates every
// connection and subscription at Info: that goes to Debug. Its errors stay
// errors (the watchdog adds the ones it does not report).
func wmLogger(l *slog.Logger) watermill.LoggerAdapter {
	if l == nil {
		l = slog.Default()
	}
	return watermill.NewSlogLoggerWithLevelMapping(l, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
}
