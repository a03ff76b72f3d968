package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/piperun/piperun/messaging"
)

// Publisher publishes run events to Kafka. It connects on first use and
// again after any failure, so a broker that is down when piperun starts,
// or that restarts, only delays publishing: the caller (the relay) sees
// the error, keeps its checkpoint and retries. It is safe for concurrent
// use; publishes are serialised, which keeps them in order.
//
// The messages of one Publish call go in one SendMessages call: sarama
// batches them per partition, the producer is idempotent with one request
// in flight, and the key is the run name, so a run's events keep their
// order. When some of them fail, the error is a *messaging.PublishError
// naming those, each marked permanent when sending it again cannot help
// (it is larger than MaxMessageBytes, or the broker calls it invalid).
type Publisher struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	prod   sarama.SyncProducer
	topics map[string]bool
	closed bool
}

var _ message.Publisher = (*Publisher)(nil)

// NewPublisher checks cfg and returns a publisher; it does not connect yet.
func NewPublisher(cfg Config, logger *slog.Logger) (*Publisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Publisher{cfg: cfg, log: logger, topics: map[string]bool{}}, nil
}

// Publish sends msgs in order to topic (the configured one if empty) and
// returns once every one was acknowledged by all in-sync replicas, or
// refused. The topic is created, if missing, on first use.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	if topic == "" {
		topic = p.cfg.Topic
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("kafka publisher is closed")
	}
	if !p.topics[topic] {
		if err := EnsureTopicPartitions(context.Background(), p.cfg, topic, p.partitionsOf(topic), p.log); err != nil {
			return err
		}
		p.topics[topic] = true
	}
	if p.prod == nil {
		prod, err := sarama.NewSyncProducer(p.cfg.Brokers, p.cfg.producerConfig())
		if err != nil {
			return fmt.Errorf("connect to kafka %v: %w", p.cfg.Brokers, err)
		}
		p.prod = prod
	}
	pms := make([]*sarama.ProducerMessage, 0, len(msgs))
	index := make(map[*sarama.ProducerMessage]int, len(msgs))
	var failed []messaging.PublishFailure
	for i, msg := range msgs {
		pm, err := Marshaler{}.Marshal(topic, msg)
		if err != nil {
			failed = append(failed, messaging.PublishFailure{Index: i, Err: fmt.Errorf("encode message %s: %w", msg.UUID, err), Permanent: true})
			continue
		}
		index[pm] = i
		pms = append(pms, pm)
	}
	err := p.prod.SendMessages(pms)
	var perrs sarama.ProducerErrors
	switch {
	case err == nil:
	case errors.As(err, &perrs):
		retriable := false
		for _, pe := range perrs {
			permanent := isPermanent(pe.Err)
			retriable = retriable || !permanent
			failed = append(failed, messaging.PublishFailure{Index: index[pe.Msg], Err: pe.Err, Permanent: permanent})
		}
		if retriable {
			p.reset()
		}
	default:
		p.reset()
		return fmt.Errorf("publish to kafka topic %s: %w", topic, err)
	}
	if len(failed) == 0 {
		return nil
	}
	slices.SortFunc(failed, func(a, b messaging.PublishFailure) int { return a.Index - b.Index })
	return fmt.Errorf("publish to kafka topic %s: %w", topic, &messaging.PublishError{Failed: failed})
}

// partitionsOf is the partition count a topic is created with: the
// configured one for the events, one for the dead letters (kept in the
// order they happened).
func (p *Publisher) partitionsOf(topic string) int32 {
	if topic == DeadLetterTopic(p.cfg.Topic) {
		return 1
	}
	return p.cfg.Partitions
}

// reset starts afresh next time: a producer whose broker went away may
// hold stale connections and sequence numbers. A message that did reach
// the broker is then sent again, a duplicate the consumers recognise by
// its ce_id.
func (p *Publisher) reset() {
	if p.prod != nil {
		_ = p.prod.Close()
		p.prod = nil
	}
}

// isPermanent tells the produce errors that sending the message again
// cannot cure: the message itself is at fault.
func isPermanent(err error) bool {
	var cerr sarama.ConfigurationError
	if errors.As(err, &cerr) {
		// sarama refuses a message over Producer.MaxMessageBytes locally,
		// with a ConfigurationError that says so.
		return strings.Contains(string(cerr), "MaxMessageBytes")
	}
	for _, k := range []sarama.KError{sarama.ErrMessageSizeTooLarge, sarama.ErrInvalidMessage, sarama.ErrInvalidMessageSize,
		sarama.ErrInvalidRecord, sarama.ErrInvalidTimestamp} {
		if errors.Is(err, k) {
			return true
		}
	}
	return false
}

// Close closes the connection, if any.
func (p *Publisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.prod == nil {
		return nil
	}
	err := p.prod.Close()
	p.prod = nil
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
	return EnsureTopicPartitions(ctx, cfg, topic, 0, nil)
}

// EnsureTopicPartitions creates topic (cfg.Topic if empty) unless it
// exists, with partitions partitions (cfg.Partitions if 0), cfg's
// replication factor and max.message.bytes = cfg.MaxMessageBytes. An
// existing topic is left as it is; when it has fewer partitions than asked
// for, or a smaller max.message.bytes, log (if not nil) says so.
func EnsureTopicPartitions(ctx context.Context, cfg Config, topic string, partitions int32, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if topic == "" {
		topic = cfg.Topic
	}
	if partitions == 0 {
		partitions = cfg.Partitions
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
		maxBytes := strconv.Itoa(cfg.MaxMessageBytes)
		err = admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: rf,
			ConfigEntries: map[string]*string{"max.message.bytes": &maxBytes}}, false)
		if errors.Is(err, sarama.ErrTopicAlreadyExists) {
			if log != nil {
				checkExisting(admin, cfg, topic, partitions, log)
			}
			err = nil
		}
		if err != nil {
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

// checkExisting logs where an existing topic differs from what piperun
// would have created; it changes nothing (adding partitions would move
// runs to other partitions, and an operator owns the topic's settings).
func checkExisting(admin sarama.ClusterAdmin, cfg Config, topic string, partitions int32, log *slog.Logger) {
	if md, err := admin.DescribeTopics([]string{topic}); err == nil && len(md) == 1 && md[0].Err == sarama.ErrNoError {
		if n := int32(len(md[0].Partitions)); n < partitions {
			log.Warn("the Kafka topic exists with fewer partitions than configured; it is left as it is", "topic", topic, "partitions", n, "configured", partitions)
		}
	}
	entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic, ConfigNames: []string{"max.message.bytes"}})
	if err != nil {
		return
	}
	for _, e := range entries {
		if n, err := strconv.Atoi(e.Value); e.Name == "max.message.bytes" && err == nil && n < cfg.MaxMessageBytes {
			log.Warn("the Kafka topic takes smaller records than piperun may produce; larger ones will go to the dead-letter topic", "topic", topic, "max_message_bytes", n, "configured", cfg.MaxMessageBytes)
		}
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
