package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// ErrFenced is returned by Assignment.Commit when the group has moved on
// to a newer generation: this member no longer owns the partition, and
// what it did since the rebalance must not be recorded.
var ErrFenced = errors.New("kafka: the consumer group moved to a new generation; this member's assignment is over")

// Assignment is what one generation of a consumer group gave this member.
// Its Commit is fenced by the generation: once the group has rebalanced,
// the broker refuses it, so a deposed owner cannot overwrite what the new
// owner records.
type Assignment struct {
	// Topic is the topic the group consumes.
	Topic string
	// Partitions are the partitions of Topic assigned to this member.
	Partitions []int32
	// Generation and MemberID identify the assignment to the coordinator.
	Generation int32
	MemberID   string

	group  string
	client sarama.Client
}

// Owns reports whether partition p is assigned to this member.
func (a *Assignment) Owns(p int32) bool {
	for _, q := range a.Partitions {
		if q == p {
			return true
		}
	}
	return false
}

// Commit records offset and metadata for partition p as the group's
// committed position, fenced by the assignment's generation: it returns
// ErrFenced once a rebalance has begun.
func (a *Assignment) Commit(ctx context.Context, p int32, offset int64, metadata string) error {
	return a.coordinated(ctx, func(b *sarama.Broker) error {
		req := sarama.NewOffsetCommitRequest(a.client.Config(), a.group)
		req.ConsumerGroupGeneration = a.Generation
		req.ConsumerID = a.MemberID
		req.AddBlock(a.Topic, p, offset, 0, metadata)
		resp, err := b.CommitOffset(req)
		if err != nil {
			return err
		}
		kerr := resp.Errors[a.Topic][p]
		switch {
		case kerr == sarama.ErrNoError:
			return nil
		case errors.Is(kerr, sarama.ErrIllegalGeneration), errors.Is(kerr, sarama.ErrUnknownMemberId),
			errors.Is(kerr, sarama.ErrRebalanceInProgress), errors.Is(kerr, sarama.ErrFencedInstancedId):
			return fmt.Errorf("%w (%v)", ErrFenced, kerr)
		default:
			return kerr
		}
	})
}

// Committed returns the group's committed offset and metadata for
// partition p; ok is false when the group has committed none.
func (a *Assignment) Committed(ctx context.Context, p int32) (offset int64, metadata string, ok bool, err error) {
	return committed(ctx, a.client, a.group, a.Topic, p)
}

func committed(ctx context.Context, client sarama.Client, group, topic string, p int32) (offset int64, metadata string, ok bool, err error) {
	err = withCoordinator(ctx, client, group, func(b *sarama.Broker) error {
		req := sarama.NewOffsetFetchRequest(client.Config().Version, group, map[string][]int32{topic: {p}})
		resp, err := b.FetchOffset(req)
		if err != nil {
			return err
		}
		if resp.Err != sarama.ErrNoError {
			return resp.Err
		}
		blk := resp.GetBlock(topic, p)
		if blk == nil {
			return nil
		}
		if blk.Err != sarama.ErrNoError {
			return blk.Err
		}
		offset, metadata, ok = blk.Offset, blk.Metadata, blk.Offset >= 0
		return nil
	})
	return offset, metadata, ok, err
}

func (a *Assignment) coordinated(ctx context.Context, f func(*sarama.Broker) error) error {
	return withCoordinator(ctx, a.client, a.group, f)
}

// withCoordinator runs f against the group's coordinator, finding it again
// when it moved, a few times.
func withCoordinator(ctx context.Context, client sarama.Client, group string, f func(*sarama.Broker) error) error {
	var err error
	for attempt := range 4 {
		if attempt > 0 {
			_ = client.RefreshCoordinator(group)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
		}
		var b *sarama.Broker
		b, err = client.Coordinator(group)
		if err != nil {
			continue
		}
		err = f(b)
		if err == nil || errors.Is(err, ErrFenced) {
			return err
		}
		if !errors.Is(err, sarama.ErrNotCoordinatorForConsumer) && !errors.Is(err, sarama.ErrConsumerCoordinatorNotAvailable) &&
			!errors.Is(err, sarama.ErrOffsetsLoadInProgress) {
			var kerr sarama.KError
			if errors.As(err, &kerr) {
				return fmt.Errorf("group %s: %w", group, err)
			}
		}
	}
	return fmt.Errorf("group %s coordinator: %w", group, err)
}

// Member is this process's membership of a consumer group over one topic.
// For every generation of the group it calls the Owner function with the
// partitions assigned to this member, in a context that ends when the
// assignment does (a rebalance, the process stopping); the group does not
// hand the partitions to another member before Owner has returned, unless
// this member stops answering the coordinator (then Assignment.Commit is
// what fences it).
//
// The relay uses it over a one-partition control topic, as a leader
// election; a worker could use it over the events topic, as ownership of
// the runs whose keys hash to its partitions. Nothing is read from the
// topic: the member only holds its partitions.
type Member struct {
	Config Config
	Group  string
	Topic  string
	// Owner runs while this member holds an assignment; an error ends
	// the assignment early and is logged, and the member rejoins.
	Owner  func(ctx context.Context, a *Assignment) error
	Logger *slog.Logger
	// OnError, if set, hears every failure to reach the group (nil when
	// the member joins again).
	OnError func(error)
}

// Run stays in the group until ctx ends, rejoining after any failure.
func (m *Member) Run(ctx context.Context) error {
	if err := m.Config.Validate(); err != nil {
		return err
	}
	log := m.Logger
	if log == nil {
		log = slog.Default()
	}
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		err := m.session(ctx, log)
		if ctx.Err() != nil {
			return nil
		}
		if m.OnError != nil {
			m.OnError(err)
		}
		log.Error("consumer group membership failed; will rejoin", "group", m.Group, "topic", m.Topic, "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
	return nil
}

// session connects, joins and stays until ctx ends or the connection fails.
func (m *Member) session(ctx context.Context, log *slog.Logger) error {
	if err := EnsureTopicPartitions(ctx, m.Config, m.Topic, 1, log); err != nil {
		return err
	}
	sc := m.Config.consumerConfig()
	sc.Consumer.Offsets.AutoCommit.Enable = false
	sc.Consumer.Group.Session.Timeout = 10 * time.Second
	sc.Consumer.Group.Heartbeat.Interval = time.Second
	sc.Consumer.Group.Rebalance.Timeout = 30 * time.Second
	client, err := sarama.NewClient(m.Config.Brokers, sc)
	if err != nil {
		return fmt.Errorf("connect to kafka %v: %w", m.Config.Brokers, err)
	}
	defer client.Close()
	cg, err := sarama.NewConsumerGroupFromClient(m.Group, client)
	if err != nil {
		return fmt.Errorf("consumer group %s: %w", m.Group, err)
	}
	defer cg.Close()
	var errMu sync.Mutex
	var groupErr error
	go func() {
		for err := range cg.Errors() {
			errMu.Lock()
			groupErr = err
			errMu.Unlock()
		}
	}()
	h := &memberHandler{m: m, client: client, log: log}
	for ctx.Err() == nil {
		if err := cg.Consume(ctx, []string{m.Topic}, h); err != nil {
			return fmt.Errorf("consumer group %s: %w", m.Group, err)
		}
		if m.OnError != nil {
			m.OnError(nil)
		}
		errMu.Lock()
		err := groupErr
		groupErr = nil
		errMu.Unlock()
		if err != nil && ctx.Err() == nil {
			log.Warn("consumer group session ended", "group", m.Group, "err", err)
		}
	}
	return nil
}

// memberHandler runs Owner for each session of the group.
type memberHandler struct {
	m      *Member
	client sarama.Client
	log    *slog.Logger

	cancel context.CancelFunc
	done   chan struct{}
}

func (h *memberHandler) Setup(s sarama.ConsumerGroupSession) error {
	a := &Assignment{Topic: h.m.Topic, Partitions: s.Claims()[h.m.Topic], Generation: s.GenerationID(),
		MemberID: s.MemberID(), group: h.m.Group, client: h.client}
	ctx, cancel := context.WithCancel(s.Context())
	h.cancel, h.done = cancel, make(chan struct{})
	go func() {
		defer close(h.done)
		if err := h.m.Owner(ctx, a); err != nil && ctx.Err() == nil {
			h.log.Error("consumer group assignment ended early", "group", h.m.Group, "generation", a.Generation, "err", err)
		}
	}()
	return nil
}

// Cleanup waits for Owner to return, so that the partitions pass to
// another member only once this one has let go of them.
func (h *memberHandler) Cleanup(sarama.ConsumerGroupSession) error {
	h.cancel()
	<-h.done
	return nil
}

func (h *memberHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for {
		select {
		case _, ok := <-c.Messages():
			if !ok {
				return nil
			}
		case <-s.Context().Done():
			return nil
		}
	}
}
