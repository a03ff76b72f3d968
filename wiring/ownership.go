package wiring

import (
	"context"
	"log/slog"
	"time"

	"github.com/piperun/piperun/messaging/kafka"
	"github.com/piperun/piperun/workers"
)

// ownedSubscriber returns the workers' Kafka subscriber, whose consumer
// group assignment decides which runs' jobs and restores are this
// process's (workers.Owner): no directory is shared between workers.
//
// When partitions are assigned, the work pending on their runs is taken
// up at once (a dead or departed owner's job is finished by the new one
// without waiting for --recover-every), once the local read models, which
// list the pending runs, reflect the store's log as it was then. When
// partitions are revoked, the jobs of their runs stop, and are left
// pending for the new owner.
func ownedSubscriber(cfg kafka.Config, wk *workers.Workers, c *Components, log *slog.Logger, goRun func(string, func(context.Context) error)) (*kafka.GroupSubscriber, error) {
	assigned := make(chan struct{}, 1)
	own := &kafka.Ownership{
		Config: cfg,
		OnAssigned: func() {
			select {
			case assigned <- struct{}{}:
			default: // a recovery is due already
			}
		},
		OnRevoked: wk.Disown,
	}
	wk.Owner = own
	sub, err := kafka.NewGroupSubscriber(cfg, own, log)
	if err != nil {
		return nil, err
	}
	goRun("recover assigned runs", func(ctx context.Context) error {
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-assigned:
			}
			recoverOwned(ctx, wk, c, own, log)
		}
	})
	return sub, nil
}

// catchUpLimit bounds how long a recovery waits for the read models.
const catchUpLimit = 30 * time.Second

// recoverOwned waits until the read models reach the store's head, then
// re-drives the pending work of the runs this process owns. A failure is
// logged: the periodic recovery tries again.
func recoverOwned(ctx context.Context, wk *workers.Workers, c *Components, own *kafka.Ownership, log *slog.Logger) {
	head, err := c.Store.HeadPosition(ctx)
	if err == nil {
		wait, cancel := context.WithTimeout(ctx, catchUpLimit)
		err = c.Read.WaitFor(wait, head)
		cancel()
	}
	if err != nil && ctx.Err() == nil {
		log.Warn("read models behind the store; recovering what they show", "err", err)
	}
	log.Info("taking up pending work of the assigned partitions", "partitions", own.Owned())
	if err := wk.Recover(ctx); err != nil && ctx.Err() == nil {
		log.Error("recover pending work of the assigned partitions", "err", err)
	}
}
