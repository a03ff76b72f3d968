package kafka

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/IBM/sarama"
)

// PartitionLag is one partition's position of the consumer group.
type PartitionLag struct {
	Partition int32
	// Committed is the next offset the group will read (the log's start
	// when the group never committed on this partition).
	Committed int64
	// End is the offset the next record written will get.
	End int64
}

// Lag is how far the consumer group is behind the end of the topic.
type Lag struct {
	Partitions []PartitionLag // by partition number
	// Waiting is the number of records not yet committed by the group.
	Waiting int64
}

// GroupLag asks the brokers how far cfg's consumer group is behind on
// cfg's topic.
func GroupLag(ctx context.Context, cfg Config) (Lag, error) {
	if err := cfg.Validate(); err != nil {
		return Lag{}, err
	}
	r := &lagReader{cfg: cfg}
	defer r.close()
	return r.read(ctx)
}

// lagReader keeps a connection across the watchdog's checks and drops it
// after a failure, so that a restarted broker is found again.
type lagReader struct {
	cfg Config

	mu     sync.Mutex
	client sarama.Client
	admin  sarama.ClusterAdmin
}

func (r *lagReader) read(ctx context.Context) (Lag, error) {
	type result struct {
		lag Lag
		err error
	}
	done := make(chan result, 1)
	go func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		lag, err := r.readLocked()
		if err != nil {
			r.closeLocked()
		}
		done <- result{lag, err}
	}()
	select {
	case res := <-done:
		return res.lag, res.err
	case <-ctx.Done():
		return Lag{}, ctx.Err()
	}
}

func (r *lagReader) readLocked() (Lag, error) {
	topic, group := r.cfg.Topic, r.cfg.ConsumerGroup
	if r.client == nil {
		client, err := sarama.NewClient(r.cfg.Brokers, r.cfg.baseConfig())
		if err != nil {
			return Lag{}, fmt.Errorf("connect to kafka %v: %w", r.cfg.Brokers, err)
		}
		admin, err := sarama.NewClusterAdminFromClient(client)
		if err != nil {
			client.Close()
			return Lag{}, fmt.Errorf("kafka admin client: %w", err)
		}
		r.client, r.admin = client, admin
	}
	if err := r.client.RefreshMetadata(topic); err != nil {
		return Lag{}, fmt.Errorf("metadata of kafka topic %s: %w", topic, err)
	}
	parts, err := r.client.Partitions(topic)
	if err != nil {
		return Lag{}, fmt.Errorf("partitions of kafka topic %s: %w", topic, err)
	}
	committed, err := r.admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
	if errors.Is(err, sarama.ErrGroupIDNotFound) {
		// Newer brokers say so of a group that never committed.
		committed, err = nil, nil
	}
	if err != nil {
		return Lag{}, fmt.Errorf("offsets of consumer group %s: %w", group, err)
	}
	var lag Lag
	for _, p := range parts {
		end, err := r.client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return Lag{}, fmt.Errorf("end offset of %s/%d: %w", topic, p, err)
		}
		pl := PartitionLag{Partition: p, Committed: -1, End: end}
		if b := committedBlock(committed, topic, p); b != nil {
			if b.Err != sarama.ErrNoError {
				return Lag{}, fmt.Errorf("offset of consumer group %s on %s/%d: %w", group, topic, p, b.Err)
			}
			pl.Committed = b.Offset
		}
		if pl.Committed < 0 {
			// No commit yet: the group starts at the oldest record.
			start, err := r.client.GetOffset(topic, p, sarama.OffsetOldest)
			if err != nil {
				return Lag{}, fmt.Errorf("start offset of %s/%d: %w", topic, p, err)
			}
			pl.Committed = start
		}
		lag.Waiting += max(pl.End-pl.Committed, 0)
		lag.Partitions = append(lag.Partitions, pl)
	}
	sort.Slice(lag.Partitions, func(i, j int) bool { return lag.Partitions[i].Partition < lag.Partitions[j].Partition })
	return lag, nil
}

func (r *lagReader) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closeLocked()
}

func (r *lagReader) closeLocked() {
	if r.admin != nil {
		_ = r.admin.Close() // closes the client too
	} else if r.client != nil {
		_ = r.client.Close()
	}
	r.client, r.admin = nil, nil
}

func committedBlock(r *sarama.OffsetFetchResponse, topic string, p int32) *sarama.OffsetFetchResponseBlock {
	if r == nil {
		return nil
	}
	return r.GetBlock(topic, p)
}
