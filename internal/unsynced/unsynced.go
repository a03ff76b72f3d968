// Package unsynced lets a process write a database that can be rebuilt
// (the read models, derived from the event log) without syncing it, and
// still never trust a copy that a system crash may have torn.
//
// A file written without fsync survives the death of the process that
// wrote it (the kernel holds its pages) but not a crash or power loss of
// the machine: SQLite in WAL mode with synchronous=OFF may then be left
// with pages of different transactions, corrupt. So a Guard records, in a
// marker file beside the database, the boot of the machine (Linux's
// boot_id) during which unsynced writes may have been made, and removes the
// marker only once the files are synced and no other process has them
// open. Opening the database in a later boot with the marker still there
// means the machine went down with unsynced writes: the caller discards
// the files and rebuilds them.
//
// The processes that open the database coordinate through an flock(2) on
// a lock file beside it: each holds it shared while it has the database
// open; the first to open it in a boot (the only one able to take it
// exclusively) checks the marker; the last to close it (again the only one
// able to take it exclusively) syncs and removes it. The kernel drops the
// locks of a killed process; a killed process leaves the marker, which is
// right, since its writes are not synced, and harmless within the same
// boot, since the kernel still holds them.
//
// Where the boot cannot be told (no /proc/sys/kernel/random/boot_id) or
// flock is not available, Open returns a Guard whose Unsynced is false:
// the caller then syncs as usual. So it does, holding the lock all the
// same, when the marker cannot be set for this boot (a full disk).
package unsynced

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// BootID returns an identifier of the current boot of the machine. It is a
// variable so that tests can simulate a reboot.
var BootID = linuxBootID

func linuxBootID() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(string(b))
	if id == "" {
		return "", errors.New("empty boot_id")
	}
	return id, nil
}

// Guard is held while a database is open (see the package comment).
type Guard struct {
	path     string   // the database
	lock     *os.File // flocked shared while open; nil when unsupported
	unsynced bool     // the marker names this boot
}

// markerPath is where the boot of possibly unsynced writes to path is
// recorded.
func markerPath(path string) string { return path + ".unsynced" }

func lockPath(path string) string { return path + ".lock" }

// Open takes the guard of the database at path. If the marker says that
// unsynced writes were made to it during an earlier boot, and no one synced
// them since, discard is called (with the guard held exclusively, so no
// other process has the database open) to remove the database's files; the
// marker is then set for this boot. The caller may write the database
// without syncs if Unsynced reports true: when the marker names this boot
// while the guard is held. When it cannot (the marker could not be written,
// on a full disk say), the guard is still held, and the caller syncs.
func Open(path string, discard func() error) (*Guard, error) {
	g := &Guard{path: path}
	boot, err := BootID()
	if err != nil {
		return g, nil // unsupported: the caller syncs
	}
	f, err := os.OpenFile(lockPath(path), os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open lock of %s: %w", path, err)
	}
	first, err := flock(f, true, false)
	if err != nil {
		f.Close()
		if errors.Is(err, errUnsupported) {
			return g, nil
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if first {
		// No other process has the database open: check the marker, and
		// set it for this boot (if that fails, Unsynced says to sync).
		if err := checkMarker(path, boot, discard); errors.Is(err, errUntrusted) {
			f.Close()
			return nil, err
		}
	}
	// Shared from here on: a conversion when first, a wait otherwise, while
	// another process checks the marker or, closing, syncs and removes it.
	if _, err := flock(f, false, true); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// Holding the lock shared, no one can change the marker. It names this
	// boot unless it could not be written, or the last process to close the
	// database removed it in between (a conversion may let one in): then
	// this process syncs.
	b, err := os.ReadFile(markerPath(path))
	g.lock = f
	g.unsynced = err == nil && strings.TrimSpace(string(b)) == boot
	return g, nil
}

// errUntrusted marks a database that may not be used: its marker cannot
// be read, or it cannot be discarded though its marker says it must.
var errUntrusted = errors.New("cannot trust")

// checkMarker discards the database if the marker names another boot, and
// leaves the marker naming this one, durably, before anything is written.
func checkMarker(path, boot string, discard func() error) error {
	b, err := os.ReadFile(markerPath(path))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("%w %s: read %s: %w", errUntrusted, path, markerPath(path), err)
	case strings.TrimSpace(string(b)) == boot:
		return nil // written in this boot: the kernel holds it all
	default:
		if err := discard(); err != nil {
			return fmt.Errorf("%w %s, written without syncs before a system restart, nor discard it: %w", errUntrusted, path, err)
		}
	}
	return writeMarker(path, boot)
}

func writeMarker(path, boot string) error {
	tmp := markerPath(path) + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	_, err = f.WriteString(boot + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, markerPath(path))
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("record unsynced writes to %s: %w", path, err)
	}
	return nil
}

// Unsynced reports whether the database may be written without syncs.
func (g *Guard) Unsynced() bool { return g != nil && g.unsynced }

// Close releases the guard, after the caller has closed the database. If
// no other process has it open, the database's files are synced (the
// database and, if there is one, its write-ahead log) and the marker
// removed, so that a later boot trusts them.
func (g *Guard) Close() error {
	if g == nil || g.lock == nil {
		return nil
	}
	defer func() { g.lock.Close(); g.lock = nil }()
	last, err := flock(g.lock, true, false)
	if err != nil || !last {
		// Another process has the database open and will do this when it
		// closes; or the lock failed, and the marker stays, which is safe.
		return nil
	}
	for _, p := range []string{g.path, g.path + "-wal"} {
		if err := syncFile(p); err != nil {
			return fmt.Errorf("sync %s: %w", p, err)
		}
	}
	if err := syncDir(filepath.Dir(g.path)); err != nil {
		return fmt.Errorf("sync %s: %w", g.path, err)
	}
	if err := os.Remove(markerPath(g.path)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("clear unsynced-writes marker of %s: %w", g.path, err)
	}
	if err := syncDir(filepath.Dir(g.path)); err != nil {
		return fmt.Errorf("sync %s: %w", g.path, err)
	}
	return nil
}

// syncFile fsyncs the file at p if it exists.
func syncFile(p string) error {
	if err := fsync(p, os.O_RDWR); !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func syncDir(dir string) error { return fsync(dir, os.O_RDONLY) }

// fsync opens p with flag and syncs it.
func fsync(p string, flag int) error {
	f, err := os.OpenFile(p, flag, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
