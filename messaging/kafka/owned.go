package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/piperun/piperun/messaging"
)

// Claims is told which partitions of a topic the consumer group assigned
// to this process, and when they are taken back.
//
// Assigned is called before the first message of a new assignment is
// delivered; Revoked after the last message of the assignment was handled
// (or its handler's context ended) and before the group completes the next
// rebalance: Kafka's rebalance waits for every live member to leave its
// session, so when another member is assigned a partition, its previous
// owner has been told (unless it is dead or cut off, which the group
// notices at its session timeout). Both run on the group's session and
// must return promptly.
type Claims interface {
	// Assigned reports the partitions now consumed, of total partitions.
	Assigned(topic string, partitions []int32, total int32)
	// Revoked reports the partitions no longer consumed.
	Revoked(topic string, partitions []int32)
}

// GroupSubscriber is a watermill subscriber in a Kafka consumer group that
// reports its partition assignment to Claims. watermill-kafka's subscriber
// hides the assignment; this one is sarama's ConsumerGroup with a handler
// whose Setup and Cleanup are the group's assignment and revocation.
//
// Messages of one partition are delivered one at a time, in order: the
// next once the previous is acked (its offset is then committed) or, after
// a nack, the same message again. Partitions are delivered concurrently.
// A message's context ends when its partition is revoked or the subscriber
// closed.
type GroupSubscriber struct {
	cfg    Config
	claims Claims
	log    *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ message.Subscriber = (*GroupSubscriber)(nil)

// nackResendSleep is how long a nacked message waits before it is
// delivered again; reconnectSleep how long after a failed attempt to join
// the group the next one is made.
const (
	nackResendSleep = 500 * time.Millisecond
	reconnectSleep  = time.Second
	// drainTimeout bounds how long a revoked partition waits for the
	// handler of its message in flight, whose context has ended.
	drainTimeout = 10 * time.Second
)

// NewGroupSubscriber checks cfg and returns a subscriber in cfg's consumer
// group that tells claims (which may be nil) its assignment. A new group
// starts at the oldest offset. It connects when Subscribe is called.
func NewGroupSubscriber(cfg Config, claims Claims, logger *slog.Logger) (*GroupSubscriber, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &GroupSubscriber{cfg: cfg, claims: claims, log: logger, ctx: ctx, cancel: cancel}, nil
}

// Subscribe joins the group on topic and returns its messages; the
// channel is closed when ctx ends or the subscriber is closed. A broker
// that cannot be reached is tried again until then.
func (s *GroupSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if s.ctx.Err() != nil {
		return nil, errors.New("kafka subscriber is closed")
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.ctx, cancel)
	out := make(chan *message.Message)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(out)
		defer cancel()
		defer stop()
		h := &groupHandler{s: s, topic: topic, out: out}
		for ctx.Err() == nil {
			if err := s.consume(ctx, topic, h); err != nil && ctx.Err() == nil {
				s.log.Error("kafka consumer group; will rejoin", "group", s.cfg.ConsumerGroup, "topic", topic, "err", err, "retry_in", reconnectSleep)
				select {
				case <-ctx.Done():
				case <-time.After(reconnectSleep):
				}
			}
		}
	}()
	return out, nil
}

// consume connects, and takes part in the group until ctx ends or the
// connection fails.
func (s *GroupSubscriber) consume(ctx context.Context, topic string, h *groupHandler) error {
	client, err := sarama.NewClient(s.cfg.Brokers, s.cfg.consumerConfig())
	if err != nil {
		return fmt.Errorf("connect to kafka %v: %w", s.cfg.Brokers, err)
	}
	defer client.Close()
	group, err := sarama.NewConsumerGroupFromClient(s.cfg.ConsumerGroup, client)
	if err != nil {
		return fmt.Errorf("join consumer group %s: %w", s.cfg.ConsumerGroup, err)
	}
	defer group.Close()
	h.client = client
	go func() {
		for err := range group.Errors() {
			s.log.Warn("kafka consumer", "group", s.cfg.ConsumerGroup, "err", err)
		}
	}()
	// Consume returns at every rebalance, and is called again for the
	// next assignment.
	for ctx.Err() == nil {
		if err := group.Consume(ctx, []string{topic}, h); err != nil {
			if errors.Is(err, sarama.ErrClosedConsumerGroup) {
				return nil
			}
			return err
		}
	}
	return nil
}

// Close leaves the group (the partitions are revoked first) and closes
// the channels of every subscription.
func (s *GroupSubscriber) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

// groupHandler is sarama's view of a subscription.
type groupHandler struct {
	s      *GroupSubscriber
	topic  string
	out    chan<- *message.Message
	client sarama.Client
}

func (h *groupHandler) Setup(sess sarama.ConsumerGroupSession) error {
	parts := sess.Claims()[h.topic]
	if h.s.claims == nil {
		return nil
	}
	// The producer's partitioner divides by the partition count it
	// knows: take the broker's, not a cached one.
	if err := h.client.RefreshMetadata(h.topic); err != nil {
		return fmt.Errorf("read partitions of topic %s: %w", h.topic, err)
	}
	all, err := h.client.Partitions(h.topic)
	if err != nil {
		return fmt.Errorf("read partitions of topic %s: %w", h.topic, err)
	}
	h.s.log.Info("kafka partitions assigned", "topic", h.topic, "partitions", parts, "of", len(all))
	h.s.claims.Assigned(h.topic, parts, int32(len(all)))
	return nil
}

func (h *groupHandler) Cleanup(sess sarama.ConsumerGroupSession) error {
	sess.Commit()
	if h.s.claims != nil {
		parts := sess.Claims()[h.topic]
		h.s.log.Info("kafka partitions revoked", "topic", h.topic, "partitions", parts)
		h.s.claims.Revoked(h.topic, parts)
	}
	return nil
}

func (h *groupHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case cm, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			if !h.deliver(sess, cm) {
				return nil
			}
		case <-sess.Context().Done():
			return nil
		}
	}
}

// deliver hands one record to the subscription until it is acked, and
// marks it consumed then; false when the session ended first.
func (h *groupHandler) deliver(sess sarama.ConsumerGroupSession, cm *sarama.ConsumerMessage) bool {
	msg, err := Marshaler{}.Unmarshal(cm)
	if err != nil {
		// Never readable: skip it rather than block the partition.
		h.s.log.Error("skip unreadable kafka record", "topic", cm.Topic, "partition", cm.Partition, "offset", cm.Offset, "err", err)
		sess.MarkMessage(cm, "")
		return true
	}
	ctx := sess.Context()
	for {
		m := msg.Copy()
		m.SetContext(ctx)
		select {
		case h.out <- m:
		case <-ctx.Done():
			return false
		}
		select {
		case <-m.Acked():
			sess.MarkMessage(cm, "")
			return true
		case <-m.Nacked():
		case <-ctx.Done():
			// Revoked while the handler runs: its context has ended;
			// give it a moment to return, so that Revoked comes after.
			select {
			case <-m.Acked():
				sess.MarkMessage(cm, "")
			case <-m.Nacked():
			case <-time.After(drainTimeout):
				h.s.log.Warn("handler still running after its partition was revoked", "partition", cm.Partition, "offset", cm.Offset,
					"type", m.Metadata.Get(messaging.MetaType))
			}
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(nackResendSleep):
		}
	}
}

// PartitionOf returns the partition that piperun's producer writes key to
// in topic of total partitions: the same partitioner (producerConfig's).
func (c Config) PartitionOf(topic, key string, total int32) (int32, error) {
	p := c.producerConfig().Producer.Partitioner(topic)
	n, err := p.Partition(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(key)}, total)
	if err != nil {
		return 0, fmt.Errorf("partition of key %q: %w", key, err)
	}
	return n, nil
}

// Ownership answers which keys (run names) belong to the partitions this
// process is assigned: it is the Claims of a GroupSubscriber. Before the
// first assignment, and after a revocation, it owns nothing.
type Ownership struct {
	// Config is the Kafka configuration, for its partitioner.
	Config Config
	// OnAssigned, if set, is called after partitions are assigned, and
	// OnRevoked after they are revoked (Owns already answers for the new
	// assignment). Both must return promptly.
	OnAssigned, OnRevoked func()

	mu    sync.Mutex
	topic string
	total int32
	owned map[int32]bool
}

var _ Claims = (*Ownership)(nil)

// Owns reports whether key's messages are on a partition assigned to this
// process.
func (o *Ownership) Owns(key string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.total == 0 || len(o.owned) == 0 {
		return false
	}
	p, err := o.Config.PartitionOf(o.topic, key, o.total)
	return err == nil && o.owned[p]
}

// Owned returns the partitions assigned to this process, in order.
func (o *Ownership) Owned() []int32 {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]int32, 0, len(o.owned))
	for p := range o.owned {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// Assigned implements Claims.
func (o *Ownership) Assigned(topic string, partitions []int32, total int32) {
	o.mu.Lock()
	o.topic, o.total = topic, total
	o.owned = make(map[int32]bool, len(partitions))
	for _, p := range partitions {
		o.owned[p] = true
	}
	o.mu.Unlock()
	if o.OnAssigned != nil {
		o.OnAssigned()
	}
}

// Revoked implements Claims.
func (o *Ownership) Revoked(_ string, partitions []int32) {
	o.mu.Lock()
	for _, p := range partitions {
		delete(o.owned, p)
	}
	o.mu.Unlock()
	if o.OnRevoked != nil {
		o.OnRevoked()
	}
}
