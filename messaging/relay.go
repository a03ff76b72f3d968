package messaging

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/piperun/piperun/eventstore"
)

// Checkpoints stores named positions in the global log.
type Checkpoints interface {
	LoadCheckpoint(ctx context.Context, name string) (int64, error)
	SaveCheckpoint(ctx context.Context, name string, position int64) error
}

// Relay publishes the run events of the store's global log, in order, and
// advances its checkpoint only after the publisher accepted them:
// at-least-once delivery, ordered per run.
type Relay struct {
	Store       eventstore.Store
	Publisher   message.Publisher
	Topic       string
	Checkpoints Checkpoints
	// Name keys the relay's checkpoint (default "relay").
	Name   string
	Logger *slog.Logger
	// Poll is how often the log is re-read for appends of other processes.
	Poll time.Duration

	mu        sync.Mutex
	published int64
	lastErr   error
}

// Status reports the last published position and the last publish error
// (nil once publishing succeeds again).
func (r *Relay) Status() (published int64, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.published, r.lastErr
}

// Run relays until ctx ends. A publish failure is retried with backoff:
// the relay never skips an event.
func (r *Relay) Run(ctx context.Context) error {
	name := r.Name
	if name == "" {
		name = "relay"
	}
	topic := r.Topic
	if topic == "" {
		topic = DefaultTopic
	}
	log := r.Logger
	if log == nil {
		log = slog.Default()
	}
	from, err := r.Checkpoints.LoadCheckpoint(ctx, name)
	if err != nil {
		return fmt.Errorf("load relay checkpoint: %w", err)
	}
	r.mu.Lock()
	r.published = from
	r.mu.Unlock()
	err = eventstore.Tail(ctx, r.Store, from, eventstore.TailOptions{Poll: r.Poll, Batch: 200}, func(ctx context.Context, batch []eventstore.Event) error {
		for _, ev := range batch {
			if RunName(ev.Stream) != "" {
				if err := r.publish(ctx, log, topic, ev); err != nil {
					return err
				}
			}
		}
		last := batch[len(batch)-1].Position
		if err := r.Checkpoints.SaveCheckpoint(ctx, name, last); err != nil {
			return fmt.Errorf("save relay checkpoint %d: %w", last, err)
		}
		r.mu.Lock()
		r.published = last
		r.mu.Unlock()
		return nil
	})
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func (r *Relay) publish(ctx context.Context, log *slog.Logger, topic string, ev eventstore.Event) error {
	backoff := 100 * time.Millisecond
	for {
		err := r.Publisher.Publish(topic, ToMessage(ev))
		r.mu.Lock()
		r.lastErr = err
		r.mu.Unlock()
		if err == nil {
			return nil
		}
		log.Error("publish run event; will retry", "position", ev.Position, "type", ev.Type, "stream", ev.Stream, "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}
