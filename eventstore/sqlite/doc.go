// Package sqlite is the embedded eventstore.Store: one SQLite file in WAL
// mode (modernc.org/sqlite, pure Go). The database itself enforces the
// expected-version check, so several processes may share the file; appends
// from concurrent callers of one process are group-committed, one fsync per
// batch.
package sqlite
