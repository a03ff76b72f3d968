package sqlite

import "time"

const (
	// checkpointInterval is the pause between background checkpoints
	// (sqlitewal.Checkpointer, on the store's checkpointer connection).
	checkpointInterval = 20 * time.Millisecond
	// writerCheckpointFrames is the WAL size, in pages, at which the writer
	// checkpoints itself after a commit (SQLite's wal_autocheckpoint). The
	// background checkpoints have copied nearly all of it by then, so the
	// writer's own pass is short; what it buys is that the WAL restarts from
	// the beginning, which a checkpoint racing the writer never allows.
	writerCheckpointFrames = 4000
)
