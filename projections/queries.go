// Queries of the run read models and of the named checkpoints kept beside them.

package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/statecodec"
)

// ListRuns returns every run, most recently changed first.
func (s *Store) ListRuns(ctx context.Context) ([]RunSummary, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT state FROM runs ORDER BY updated DESC, name`)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	defer rows.Close()
	out := []RunSummary{}
	for rows.Next() {
		var state []byte
		if err := rows.Scan(&state); err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		var r domain.Run
		if err := statecodec.DecodeState(state, &r); err != nil {
			return nil, fmt.Errorf("list runs: decode: %w", err)
		}
		out = append(out, Summary(r))
	}
	return out, rows.Err()
}

// GetRunState returns the projected state of a run.
func (s *Store) GetRunState(ctx context.Context, name string) (domain.Run, error) {
	var state []byte
	err := s.db.QueryRowContext(ctx, `SELECT state FROM runs WHERE name = ?`, name).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Run{}, fmt.Errorf("run %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return domain.Run{}, fmt.Errorf("read run %s: %w", name, err)
	}
	var r domain.Run
	if err := statecodec.DecodeState(state, &r); err != nil {
		return domain.Run{}, fmt.Errorf("decode run %s: %w", name, err)
	}
	return r, nil
}

// GetRun returns the detail model of a run.
func (s *Store) GetRun(ctx context.Context, name string) (RunDetail, error) {
	r, err := s.GetRunState(ctx, name)
	if err != nil {
		return RunDetail{}, err
	}
	return View(r), nil
}

// LoadCheckpoint returns a named position kept beside the read models (the
// relay's, for example); 0 when none was saved.
func (s *Store) LoadCheckpoint(ctx context.Context, name string) (int64, error) {
	var pos int64
	err := s.db.QueryRowContext(ctx, `SELECT position FROM checkpoint WHERE name = ?`, name).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("load checkpoint %s: %w", name, err)
	}
	return pos, nil
}

// SaveCheckpoint stores a named position.
func (s *Store) SaveCheckpoint(ctx context.Context, name string, position int64) error {
	if name == checkpointName {
		return fmt.Errorf("save checkpoint: %q is reserved for the read models", name)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO checkpoint (name, position) VALUES (?, ?)
		ON CONFLICT(name) DO UPDATE SET position = excluded.position`, name, position); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", name, err)
	}
	return nil
}

// ListRunStates returns the projected state of every run.
func (s *Store) ListRunStates(ctx context.Context) ([]domain.Run, error) {
	return s.runStates(ctx, `SELECT state FROM runs ORDER BY name`)
}

// PendingRunStates returns the states of the runs with work pending (a job
// queued or running, a restore, a deletion), from an index: the workers'
// periodic recovery asks for them every minute, and reading every run's
// state for that would cost more than the recovery.
func (s *Store) PendingRunStates(ctx context.Context) ([]domain.Run, error) {
	// The literals match the partial index runs_busy.
	return s.runStates(ctx, `SELECT state FROM runs WHERE status IN ('Queued', 'Running', 'Restoring', 'Deleting') ORDER BY name`)
}

func (s *Store) runStates(ctx context.Context, query string) ([]domain.Run, error) {
	rows, err := s.db.QueryContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("list run states: %w", err)
	}
	defer rows.Close()
	var out []domain.Run
	for rows.Next() {
		var state []byte
		if err := rows.Scan(&state); err != nil {
			return nil, fmt.Errorf("list run states: %w", err)
		}
		var r domain.Run
		if err := statecodec.DecodeState(state, &r); err != nil {
			return nil, fmt.Errorf("list run states: decode: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
