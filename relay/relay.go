package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/piperun/piperun/eventstore"
	"github.com/piperun/piperun/messaging"
)

// Checkpoints stores named positions in the global log.
type Checkpoints interface {
	LoadCheckpoint(ctx context.Context, name string) (int64, error)
	SaveCheckpoint(ctx context.Context, name string, position int64) error
}

// DeadLetter is the record the relay publishes, on the dead-letter topic,
// for an event that cannot be published: where it is in the store, and
// why it could not go. Body holds the event's JSON when the record fits
// with it.
type DeadLetter struct {
	EventID  string          `json:"event_id"`
	Stream   string          `json:"stream"`
	Type     string          `json:"type"`
	Version  int64           `json:"version"`
	Position int64           `json:"position"`
	Error    string          `json:"error"`
	Time     time.Time       `json:"time"`
	Body     json.RawMessage `json:"body,omitempty"`
}

// RelayStatus is what a relay has done so far.
type RelayStatus struct {
	// Published is the last position of the log the relay dealt with:
	// published, dead-lettered or skipped (not a run event).
	Published int64
	// LastError is the last publish error, nil once publishing succeeds
	// again.
	LastError error
	// LastErrorAt is when LastError happened.
	LastErrorAt time.Time
	// DeadLetters counts the events this relay sent to the dead-letter
	// topic.
	DeadLetters int64
	// Running says whether Run is relaying now.
	Running bool
}

// Relay publishes the run events of the store's global log, in order, and
// advances its checkpoint only after the publisher accepted them:
// at-least-once delivery, ordered per run.
//
// Events go in batches (one Publish call per batch). An event the
// publisher refuses for good (too large, invalid) goes to DeadLetterTopic
// instead, and the relay goes on: one bad event must not hold up the log.
// Any other failure is retried, with backoff, for as long as it lasts:
// nothing is skipped.
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
	// BatchSize is how many events go in one Publish call (default 100).
	BatchSize int
	// DeadLetterTopic receives a DeadLetter record for each event the
	// publisher refuses for good; empty means such an event is retried
	// like any other failure.
	DeadLetterTopic string
	// MaxDeadLetterBody is the largest event body copied into a dead-letter
	// record (default 64 KiB).
	MaxDeadLetterBody int
	// OnDeadLetter, if set, is called for each event dead-lettered.
	OnDeadLetter func(DeadLetter)

	mu     sync.Mutex
	status RelayStatus
}

// Status reports the relay's progress.
func (r *Relay) Status() RelayStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

// Run relays until ctx ends or saving the checkpoint fails.
func (r *Relay) Run(ctx context.Context) error {
	name := r.Name
	if name == "" {
		name = "relay"
	}
	topic := r.Topic
	if topic == "" {
		topic = messaging.DefaultTopic
	}
	log := r.Logger
	if log == nil {
		log = slog.Default()
	}
	batch := r.BatchSize
	if batch <= 0 {
		batch = 100
	}
	from, err := r.Checkpoints.LoadCheckpoint(ctx, name)
	if err != nil {
		return fmt.Errorf("load relay checkpoint: %w", err)
	}
	r.mu.Lock()
	r.status.Published = from
	r.status.Running = true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.status.Running = false
		r.mu.Unlock()
	}()
	err = eventstore.Tail(ctx, r.Store, from, eventstore.TailOptions{Poll: r.Poll, Batch: batch}, func(ctx context.Context, evs []eventstore.Event) error {
		var runEvents []eventstore.Event
		for _, ev := range evs {
			if messaging.RunName(ev.Stream) != "" {
				runEvents = append(runEvents, ev)
			}
		}
		if len(runEvents) > 0 {
			if err := r.publish(ctx, log, topic, runEvents); err != nil {
				return err
			}
		}
		last := evs[len(evs)-1].Position
		if err := r.Checkpoints.SaveCheckpoint(ctx, name, last); err != nil {
			return fmt.Errorf("save relay checkpoint %d: %w", last, err)
		}
		r.mu.Lock()
		r.status.Published = last
		r.mu.Unlock()
		return nil
	})
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// publish sends evs until every one is stored or dead-lettered.
func (r *Relay) publish(ctx context.Context, log *slog.Logger, topic string, evs []eventstore.Event) error {
	backoff := 100 * time.Millisecond
	for len(evs) > 0 {
		msgs := make([]*message.Message, len(evs))
		for i, ev := range evs {
			msgs[i] = messaging.ToMessage(ev)
		}
		err := r.Publisher.Publish(topic, msgs...)
		r.setErr(err)
		if err == nil {
			return nil
		}
		var pe *messaging.PublishError
		if !errors.As(err, &pe) || len(pe.Failed) == 0 {
			// Nothing is known to be stored: send the whole batch again.
			log.Error("publish run events; will retry", "from_position", evs[0].Position, "events", len(evs), "err", err, "retry_in", backoff)
			if err := sleep(ctx, backoff); err != nil {
				return err
			}
			backoff = min(backoff*2, 10*time.Second)
			continue
		}
		// The stored ones are done; the ones refused for good go to the
		// dead-letter topic; the rest are sent again, in their order (the
		// publisher keeps a run's events on one partition in order, so a
		// retried event cannot pass a later one of its run).
		var retry []eventstore.Event
		for _, f := range pe.Failed {
			ev := evs[f.Index]
			if f.Permanent && r.DeadLetterTopic != "" {
				if err := r.deadLetter(ctx, log, ev, f.Err); err != nil {
					return err
				}
				continue
			}
			retry = append(retry, ev)
		}
		if len(retry) > 0 {
			log.Error("publish run events; will retry the ones not stored", "from_position", retry[0].Position, "events", len(retry), "err", err, "retry_in", backoff)
			if err := sleep(ctx, backoff); err != nil {
				return err
			}
			backoff = min(backoff*2, 10*time.Second)
		}
		evs = retry
	}
	return nil
}

// deadLetter publishes the dead-letter record of ev, with the event's body
// if that fits, without it if not, retrying other failures until stored.
func (r *Relay) deadLetter(ctx context.Context, log *slog.Logger, ev eventstore.Event, cause error) error {
	limit := r.MaxDeadLetterBody
	if limit <= 0 {
		limit = 64 << 10
	}
	dl := DeadLetter{EventID: ev.ID, Stream: ev.Stream, Type: ev.Type, Version: ev.Version, Position: ev.Position,
		Error: cause.Error(), Time: time.Now().UTC()}
	if len(ev.Data) <= limit && json.Valid(ev.Data) {
		dl.Body = json.RawMessage(ev.Data)
	}
	log.Error("run event cannot be published; sending it to the dead-letter topic", "position", ev.Position, "type", ev.Type,
		"stream", ev.Stream, "event_id", ev.ID, "bytes", len(ev.Data), "err", cause, "dead_letter_topic", r.DeadLetterTopic)
	backoff := 100 * time.Millisecond
	for {
		body, err := json.Marshal(dl)
		if err != nil {
			return fmt.Errorf("encode dead letter of event %s: %w", ev.ID, err)
		}
		msg := message.NewMessage(ev.ID, body)
		msg.Metadata.Set(messaging.MetaID, ev.ID)
		msg.Metadata.Set(messaging.MetaType, ev.Type)
		msg.Metadata.Set(messaging.MetaStream, ev.Stream)
		msg.Metadata.Set(messaging.MetaPosition, fmt.Sprint(ev.Position))
		msg.Metadata.Set(messaging.MetaContentType, "application/json")
		msg.Metadata.Set(messaging.MetaPartitionKey, messaging.RunName(ev.Stream))
		err = r.Publisher.Publish(r.DeadLetterTopic, msg)
		if err == nil {
			r.mu.Lock()
			r.status.DeadLetters++
			r.mu.Unlock()
			if r.OnDeadLetter != nil {
				r.OnDeadLetter(dl)
			}
			return nil
		}
		var pe *messaging.PublishError
		if errors.As(err, &pe) && len(pe.Failed) == 1 && pe.Failed[0].Permanent && dl.Body != nil {
			dl.Body = nil // the record fits without the body
			continue
		}
		if errors.As(err, &pe) && len(pe.Failed) == 1 && pe.Failed[0].Permanent {
			// Cannot happen with a sane limit (the record is a few hundred
			// bytes); keep the error short and try again.
			dl.Error = dl.Error[:min(len(dl.Error), 512)]
		}
		r.setErr(err)
		log.Error("publish dead letter; will retry", "position", ev.Position, "err", err, "retry_in", backoff)
		if err := sleep(ctx, backoff); err != nil {
			return err
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

func (r *Relay) setErr(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status.LastError = err
	if err != nil {
		r.status.LastErrorAt = time.Now()
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
