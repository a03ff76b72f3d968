package projections

import "context"

// Synchronous returns the synchronous setting of the projector's
// connections and of the checkpoints' (0 OFF, 1 NORMAL, 2 FULL).
func Synchronous(ctx context.Context, s *Store) (projector, checkpoints int, err error) {
	if err := s.db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&projector); err != nil {
		return 0, 0, err
	}
	err = s.ckptDB.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&checkpoints)
	return projector, checkpoints, err
}

// Waiting returns how many WaitFor calls the store holds.
func Waiting(s *Store) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.waiters)
}
