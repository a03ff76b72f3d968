package sqlite

import (
	"context"
	"time"
)

const (
	// checkpointInterval is the pause between background checkpoints.
	checkpointInterval = 20 * time.Millisecond
	// writerCheckpointFrames is the WAL size, in pages, at which the writer
	// checkpoints itself after a commit (SQLite's wal_autocheckpoint). The
	// background checkpoints have copied nearly all of it by then, so the
	// writer's own pass is short; what it buys is that the WAL restarts from
	// the beginning, which a checkpoint racing the writer never allows.
	writerCheckpointFrames = 4000
)

// checkpointLoop copies committed pages from the WAL into the database file
// on its own connection, so that the writer's commits do not pay for it: on
// a small machine that work then runs beside the writer, not in its way.
func (s *Store) checkpointLoop() {
	defer close(s.checkpointerDone)
	for {
		select {
		case <-s.stopCheckpoints:
			return
		case <-s.committed:
		}
		// A failed checkpoint is retried after the next commit; the writer's
		// own checkpoints keep the WAL bounded meanwhile, and a disk problem
		// reaches callers through their appends.
		_, _ = s.checkpointer.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)")
		select {
		case <-s.stopCheckpoints:
			return
		case <-time.After(checkpointInterval):
		}
	}
}

// wakeCheckpointer tells checkpointLoop that there is something to copy.
func (s *Store) wakeCheckpointer() {
	select {
	case s.committed <- struct{}{}:
	default: // already told
	}
}
