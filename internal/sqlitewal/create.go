package sqlitewal

import (
	"context"
	"database/sql"
	"fmt"
	"os"
)

// Create creates an empty database file at path with pages of pageSize
// bytes, in WAL mode, unless the file exists with content (whose page
// size then stays as it is). It must run before the file is opened with
// journal_mode(WAL) in the DSN: the page size of a database in WAL mode
// cannot change, and the driver sets a DSN's pragmas in name order,
// journal_mode before page_size.
func Create(ctx context.Context, path string, pageSize int) error {
	if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
		return nil
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, fmt.Sprintf(`PRAGMA page_size = %d; PRAGMA journal_mode = WAL`, pageSize)); err != nil {
		return fmt.Errorf("create %s with %d-byte pages: %w", path, pageSize, err)
	}
	return nil
}
