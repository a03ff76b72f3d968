package kafka_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/piperun/piperun/messaging"
	"github.com/piperun/piperun/messaging/kafka"
)

// member is one process of the consumer group: a GroupSubscriber whose
// Ownership is checked against every message it is given.
type member struct {
	own *kafka.Ownership
	sub *kafka.GroupSubscriber

	mu       sync.Mutex
	got      []string // runs, in the order handled
	notOwned []string // runs handled while Owns said no
	revoked  int
}

func join(t *testing.T, cfg kafka.Config) *member {
	t.Helper()
	m := &member{}
	m.own = &kafka.Ownership{Config: cfg, OnRevoked: func() { m.mu.Lock(); m.revoked++; m.mu.Unlock() }}
	sub, err := kafka.NewGroupSubscriber(cfg, m.own, quiet)
	if err != nil {
		t.Fatal(err)
	}
	m.sub = sub
	msgs, err := sub.Subscribe(context.Background(), cfg.Topic)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for msg := range msgs {
			env, err := messaging.FromMessage(msg)
			if err != nil {
				t.Error(err)
				msg.Nack()
				continue
			}
			m.mu.Lock()
			m.got = append(m.got, env.Run)
			if !m.own.Owns(env.Run) {
				m.notOwned = append(m.notOwned, env.Run)
			}
			m.mu.Unlock()
			msg.Ack()
		}
	}()
	t.Cleanup(func() { _ = sub.Close() })
	return m
}

func (m *member) handled() (got, notOwned []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.got...), append([]string(nil), m.notOwned...)
}

// TestOwnershipFollowsAssignment checks that a member of the group is given
// exactly the runs Ownership says it owns, that the partition it computes
// for a run is the one the producer wrote to, and that a member that
// leaves has its partitions revoked and taken over by the other.
func TestOwnershipFollowsAssignment(t *testing.T) {
	c := newCluster(t)
	cfg := kafka.Config{Brokers: c.ListenAddrs(), Partitions: 6, ConsumerGroup: "owners"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := kafka.EnsureTopic(context.Background(), cfg, ""); err != nil {
		t.Fatal(err)
	}
	pub, err := kafka.NewPublisher(cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()

	a := join(t, cfg)
	waitFor(t, 30*time.Second, "the first member to own every partition", func() bool { return len(a.own.Owned()) == 6 })
	b := join(t, cfg)
	waitFor(t, 30*time.Second, "the partitions to be shared", func() bool {
		na, nb := len(a.own.Owned()), len(b.own.Owned())
		return na > 0 && nb > 0 && na+nb == 6
	})

	var runs []string
	for i := range 40 {
		run := fmt.Sprintf("run-%02d", i)
		runs = append(runs, run)
		if err := pub.Publish(cfg.Topic, messaging.ToMessage(event(run, 1, int64(i+1)))); err != nil {
			t.Fatal(err)
		}
	}
	// The producer's partition of each record is the one PartitionOf gives.
	for _, rec := range consumeAll(t, cfg.Brokers, cfg.Topic, len(runs)) {
		p, err := cfg.PartitionOf(cfg.Topic, string(rec.Key), 6)
		if err != nil {
			t.Fatal(err)
		}
		if p != rec.Partition {
			t.Errorf("run %s: PartitionOf says %d, the producer wrote to %d", rec.Key, p, rec.Partition)
		}
	}
	waitFor(t, 30*time.Second, "every run to be handled", func() bool {
		ga, _ := a.handled()
		gb, _ := b.handled()
		return len(ga)+len(gb) >= len(runs)
	})
	ga, na := a.handled()
	gb, nb := b.handled()
	if len(na) > 0 || len(nb) > 0 {
		t.Fatalf("runs handled by a member that does not own them: %v %v", na, nb)
	}
	if len(ga) == 0 || len(gb) == 0 || len(ga)+len(gb) != len(runs) {
		t.Fatalf("handled %d + %d runs, want %d once, shared", len(ga), len(gb), len(runs))
	}
	for _, run := range runs {
		if a.own.Owns(run) == b.own.Owns(run) {
			t.Errorf("run %s: owned by a %v, by b %v; want exactly one", run, a.own.Owns(run), b.own.Owns(run))
		}
	}

	// b leaves: its partitions are revoked, and a is given them.
	if err := b.sub.Close(); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	revoked := b.revoked
	b.mu.Unlock()
	if revoked == 0 || len(b.own.Owned()) != 0 {
		t.Fatalf("b left with %d revocations and still owns %v", revoked, b.own.Owned())
	}
	waitFor(t, 30*time.Second, "a to own every partition again", func() bool { return len(a.own.Owned()) == 6 })
	if err := pub.Publish(cfg.Topic, messaging.ToMessage(event("late", 1, 100))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "a to handle the late run", func() bool {
		g, _ := a.handled()
		return len(g) > 0 && g[len(g)-1] == "late"
	})
	if _, n := a.handled(); len(n) > 0 {
		t.Fatalf("runs handled by a member that does not own them: %v", n)
	}
}

// TestGroupSubscriberRedeliversNacked checks the delivery rules: a nacked
// message comes again, and the next of its partition only after the ack.
func TestGroupSubscriberRedeliversNacked(t *testing.T) {
	c := newCluster(t)
	cfg := kafka.Config{Brokers: c.ListenAddrs(), Partitions: 1, ConsumerGroup: "nack"}
	pub := newPublisher(t, &cfg)
	for v := int64(1); v <= 3; v++ {
		if err := pub.Publish(cfg.Topic, messaging.ToMessage(event("a", v, v))); err != nil {
			t.Fatal(err)
		}
	}
	sub, err := kafka.NewGroupSubscriber(cfg, nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	msgs, err := sub.Subscribe(context.Background(), cfg.Topic)
	if err != nil {
		t.Fatal(err)
	}
	var seen []int64
	nacked := false
	next := func() *message.Message {
		select {
		case m := <-msgs:
			return m
		case <-time.After(30 * time.Second):
			t.Fatalf("no message after %v", seen)
			return nil
		}
	}
	for len(seen) < 4 {
		m := next()
		env, err := messaging.FromMessage(m)
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, env.Version)
		if env.Version == 2 && !nacked {
			nacked = true
			m.Nack()
			continue
		}
		m.Ack()
	}
	if got := fmt.Sprint(seen); got != "[1 2 2 3]" {
		t.Fatalf("delivered %s, want [1 2 2 3]", got)
	}
}
