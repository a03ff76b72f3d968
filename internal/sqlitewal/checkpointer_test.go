package sqlitewal

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// TestCheckpointerCopiesTheLog writes a megabyte that stays in the WAL (the
// writer's own checkpoints are off), wakes the checkpointer and waits for
// the pages to reach the database file.
func TestCheckpointerCopiesTheLog(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "x.db")
	w, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=wal_autocheckpoint(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.SetMaxOpenConns(1)
	if _, err := w.ExecContext(ctx, `CREATE TABLE t (b BLOB)`); err != nil {
		t.Fatal(err)
	}
	for range 16 {
		if _, err := w.ExecContext(ctx, `INSERT INTO t VALUES (?)`, []byte(strings.Repeat("x", 64<<10))); err != nil {
			t.Fatal(err)
		}
	}
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	if s := size(); s >= 1<<20 {
		t.Fatalf("database file already %d bytes before any checkpoint", s)
	}
	c, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ck := Start(c, time.Millisecond)
	defer ck.Stop()
	time.Sleep(20 * time.Millisecond)
	if s := size(); s >= 1<<20 {
		t.Fatalf("checkpointed (%d bytes) before being woken", s)
	}
	ck.Wake()
	ck.Wake() // never blocks
	deadline := time.Now().Add(10 * time.Second)
	for size() < 1<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("database file %d bytes 10s after the wake-up, want the megabyte copied", size())
		}
		time.Sleep(5 * time.Millisecond)
	}
	ck.Stop()
	ck.Stop() // a second Stop returns at once
}
