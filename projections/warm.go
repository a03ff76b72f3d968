package projections

import (
	"context"
	"fmt"

	"github.com/piperun/piperun/domain"
)

// EachRunState calls yield with the projected state of every run, the
// most recently updated first (to the second: the order within one second
// is not promised), until yield returns false. A server warms its command
// cache with them.
func (s *Store) EachRunState(ctx context.Context, yield func(domain.Run) bool) error {
	rows, err := s.db.QueryContext(ctx, `SELECT name, state FROM runs ORDER BY updated DESC`)
	if err != nil {
		return fmt.Errorf("list run states: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var state []byte
		if err := rows.Scan(&name, &state); err != nil {
			return fmt.Errorf("list run states: %w", err)
		}
		var r domain.Run
		if err := domain.DecodeState(state, &r); err != nil {
			return fmt.Errorf("list run states: run %s: %w", name, err)
		}
		if !yield(r) {
			return nil
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list run states: %w", err)
	}
	return nil
}
