package eventstore

import (
	"context"
	"fmt"
	"time"
)

// TailOptions configures Tail.
type TailOptions struct {
	// Batch is the number of events read at a time (default 500).
	Batch int
	// Poll is how often the log is re-read when nothing signalled a change,
	// which catches appends of other processes (default 200ms).
	Poll time.Duration
}

// Tail calls handle for every event of the global log after position after,
// in order, and keeps following the log until ctx ends or handle fails.
// handle receives batches so callers can commit a checkpoint per batch.
func Tail(ctx context.Context, s Store, after int64, opts TailOptions, handle func(ctx context.Context, batch []Event) error) error {
	if opts.Batch <= 0 {
		opts.Batch = 500
	}
	if opts.Poll <= 0 {
		opts.Poll = 200 * time.Millisecond
	}
	timer := time.NewTimer(opts.Poll)
	defer timer.Stop()
	for {
		changed := s.Changed() // take the channel before reading, so no append is missed
		batch, err := s.ReadAll(ctx, after, opts.Batch)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("tail global log after %d: %w", after, err)
		}
		if len(batch) > 0 {
			if err := handle(ctx, batch); err != nil {
				return err
			}
			after = batch[len(batch)-1].Position
			if len(batch) == opts.Batch {
				continue
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(opts.Poll)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-timer.C:
		}
	}
}
