package projections

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
)

// TestJanitorQueriesUseIndexes checks the plans of the janitor's questions
// (they run on every restore and deletion, and a scan of the runs, or of
// every run sharing a product, made restores slow at 5,000 runs) and of
// the workers' recovery's, which runs every minute.
func TestJanitorQueriesUseIndexes(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "read.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, c := range []struct {
		query, index string
	}{
		{`SELECT EXISTS (SELECT 1 FROM runs WHERE status IN ('Queued', 'Running'))`, "runs_pending"},
		{`SELECT EXISTS (SELECT 1 FROM artifact_refs WHERE digest = 'd' AND run != 'r')`, "PRIMARY KEY"},
		{`SELECT state FROM runs WHERE status IN ('Queued', 'Running', 'Restoring', 'Deleting') ORDER BY name`, "runs_busy"},
	} {
		plan := queryPlan(t, ctx, s.db, c.query)
		if !strings.Contains(plan, "USING "+c.index) && !strings.Contains(plan, "INDEX "+c.index) ||
			strings.Contains(plan, "SCAN runs") || strings.Contains(plan, "SCAN artifact_refs") {
			t.Errorf("plan of %s:\n%s\nwant a search using %s", c.query, plan, c.index)
		}
	}
	// Files made before runs_pending existed get it when opened.
	if _, err := s.db.ExecContext(ctx, `DROP INDEX runs_pending`); err != nil {
		t.Fatal(err)
	}
	path := s.path
	s.Close()
	s2, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	var n int
	if err := s2.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'runs_pending'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("runs_pending after reopening: %d, %v", n, err)
	}
}

func queryPlan(t *testing.T, ctx context.Context, db *sql.DB, query string) string {
	t.Helper()
	rows, err := db.QueryContext(ctx, "EXPLAIN QUERY PLAN "+query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		b.WriteString(detail + "\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
