package relay_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/piperun/piperun/eventstore"
	"github.com/piperun/piperun/eventstore/memory"
	"github.com/piperun/piperun/messaging"
	"github.com/piperun/piperun/relay"
)

type memCheckpoints struct {
	mu  sync.Mutex
	pos map[string]int64
}

func (c *memCheckpoints) LoadCheckpoint(_ context.Context, name string) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pos[name], nil
}

func (c *memCheckpoints) SaveCheckpoint(_ context.Context, name string, p int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pos[name] = p
	return nil
}

// flaky wraps a real publisher and refuses the first n publishes, as a
// broker that is down would.
type flaky struct {
	message.Publisher
	fails atomic.Int32
}

func (f *flaky) Publish(topic string, msgs ...*message.Message) error {
	if f.fails.Add(-1) >= 0 {
		return errors.New("broker unavailable")
	}
	return f.Publisher.Publish(topic, msgs...)
}

func appendRun(t *testing.T, es eventstore.Store, stream string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		v, _ := es.StreamVersion(context.Background(), stream)
		if _, _, err := es.Append(context.Background(), stream, v, eventstore.EventData{
			ID: fmt.Sprintf("%s-%d", stream, v+1), Type: "run.log_written.v1", Data: []byte(`{}`), Actor: "test", Time: time.Now(),
		}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRelayPublishesRunEventsInOrderAndRetries(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	es := memory.New()
	bus := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, watermill.NopLogger{})
	msgs, err := bus.Subscribe(ctx, messaging.DefaultTopic)
	if err != nil {
		t.Fatal(err)
	}
	pub := &flaky{Publisher: bus}
	pub.fails.Store(3)
	cps := &memCheckpoints{pos: map[string]int64{}}
	appendRun(t, es, "run-a", 3)
	appendRun(t, es, "user-x", 1) // never published: user events hold token hashes
	appendRun(t, es, "run-b", 2)
	relay := &relay.Relay{Store: es, Publisher: pub, Checkpoints: cps, Poll: 10 * time.Millisecond}
	done := make(chan error, 1)
	go func() { done <- relay.Run(ctx) }()

	var got []string
	for len(got) < 7 {
		select {
		case m := <-msgs:
			env, err := messaging.FromMessage(m)
			if err != nil {
				t.Fatal(err)
			}
			if m.Metadata.Get(messaging.MetaSpecVersion) != "1.0" || m.Metadata.Get(messaging.MetaPartitionKey) != env.Run {
				t.Errorf("message %s lacks CloudEvents attributes or key: %v", m.UUID, m.Metadata)
			}
			got = append(got, fmt.Sprintf("%s/%d", env.Run, env.Version))
			m.Ack()
			if len(got) == 5 {
				appendRun(t, es, "run-a", 2) // appends while running are followed
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d messages: %v", len(got), got)
		}
	}
	want := []string{"a/1", "a/2", "a/3", "b/1", "b/2", "a/4", "a/5"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("published %v, want %v", got, want)
	}
	head, _ := es.HeadPosition(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if p, _ := cps.LoadCheckpoint(ctx, "relay"); p == head {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("checkpoint did not reach head %d", head)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := relay.Status().LastError; err != nil {
		t.Fatalf("relay status after recovery: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestRelayResumesFromCheckpoint(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	es := memory.New()
	appendRun(t, es, "run-a", 4)
	all, _ := es.ReadAll(ctx, 0, 0)
	cps := &memCheckpoints{pos: map[string]int64{"relay": all[1].Position}}
	bus := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, watermill.NopLogger{})
	msgs, _ := bus.Subscribe(ctx, messaging.DefaultTopic)
	relay := &relay.Relay{Store: es, Publisher: bus, Checkpoints: cps, Poll: 10 * time.Millisecond}
	go relay.Run(ctx)
	for _, want := range []int64{3, 4} {
		select {
		case m := <-msgs:
			env, _ := messaging.FromMessage(m)
			if env.Version != want {
				t.Fatalf("got version %d, want %d", env.Version, want)
			}
			m.Ack()
		case <-time.After(5 * time.Second):
			t.Fatal("no message")
		}
	}
}
