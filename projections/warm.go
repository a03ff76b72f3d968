package projections

import (
	"context"
	"errors"
	"fmt"

	"github.com/piperun/piperun/domain"
)

// EachRunState calls yield with the projected state of every run, the
// most recently updated first, until yield returns false. A server warms its command
// cache with them.
//
// The names are sorted first and each state read by its key after: sorting
// the rows with their states would sort every state (hundreds of
// megabytes for tens of thousands of runs) even when yield stops early.
func (s *Store) EachRunState(ctx context.Context, yield func(domain.Run) bool) error {
	rows, err := s.db.QueryContext(ctx, `SELECT name FROM runs ORDER BY updated DESC`)
	if err != nil {
		return fmt.Errorf("list run states: %w", err)
	}
	var names []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return fmt.Errorf("list run states: %w", err)
		}
		names = append(names, name)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("list run states: %w", err)
	}
	for _, name := range names {
		r, err := s.GetRunState(ctx, name)
		switch {
		case errors.Is(err, ErrNotFound):
			continue // deleted since the names were read
		case err != nil:
			return fmt.Errorf("list run states: %w", err)
		}
		if !yield(r) {
			return nil
		}
	}
	return nil
}
