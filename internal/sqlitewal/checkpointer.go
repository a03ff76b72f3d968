// Package sqlitewal copies the committed pages of a SQLite database's
// write-ahead log into the database file in the background.
package sqlitewal

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// Checkpointer runs passive checkpoints on a connection of its own after
// commits, so that the committing connection does not pay for the copy: on
// a small machine the work runs beside the writer, not in its way. The
// writer's own automatic checkpoint (wal_autocheckpoint) still bounds the
// log and lets it restart from the beginning, which a checkpoint racing the
// writer never allows; the background passes have copied nearly everything
// by then, so that pass is short.
type Checkpointer struct {
	db       *sql.DB
	interval time.Duration
	wake     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
}

// Start starts checkpointing through db, at most once per interval.
func Start(db *sql.DB, interval time.Duration) *Checkpointer {
	c := &Checkpointer{db: db, interval: interval, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go c.loop()
	return c
}

func (c *Checkpointer) loop() {
	defer close(c.done)
	for {
		select {
		case <-c.stop:
			return
		case <-c.wake:
		}
		// A failed checkpoint is retried after the next commit; the
		// writer's own checkpoints keep the log bounded meanwhile, and a
		// disk problem reaches callers through their writes.
		_, _ = c.db.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)")
		select {
		case <-c.stop:
			return
		case <-time.After(c.interval):
		}
	}
}

// Wake tells the checkpointer there is something to copy. It never blocks.
func (c *Checkpointer) Wake() {
	select {
	case c.wake <- struct{}{}:
	default: // already told
	}
}

// Stop stops the checkpointer and waits for a pass under way. It does not
// close the connection.
func (c *Checkpointer) Stop() {
	c.once.Do(func() { close(c.stop) })
	<-c.done
}
