// Package lease gives processes exclusive leases on names: a lease is an
// flock(2) on a file of a directory the processes share, so the kernel
// releases it when its holder dies, kill -9 included. Workers take one on a
// job before running it, so that a live process's job is never run again
// by another, while a dead process's job can be taken up at once.
package lease

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Dir is a directory of lease files.
type Dir struct {
	path string
}

// Open returns the leases in dir, creating it if needed.
func Open(dir string) (*Dir, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("open lease directory: %w", err)
	}
	return &Dir{path: dir}, nil
}

// ErrBadName is returned for a name that is not a plain file name.
var ErrBadName = errors.New("lease name must be a plain file name")

// Lease is a held lease.
type Lease struct {
	f    *os.File
	path string
}

// TryAcquire takes the lease on name if no one holds it, without waiting:
// ok is false when another holder (in this process or another) has it.
func (d *Dir) TryAcquire(name string) (l *Lease, ok bool, err error) {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
		return nil, false, fmt.Errorf("%w: %q", ErrBadName, name)
	}
	p := filepath.Join(d.path, name)
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, false, fmt.Errorf("open lease %s: %w", name, err)
	}
	held, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, false, fmt.Errorf("lock lease %s: %w", name, err)
	}
	if !held {
		f.Close()
		return nil, false, nil
	}
	return &Lease{f: f, path: p}, true, nil
}

// Release gives the lease up. With remove, its file goes too: for a name
// that will not be leased again (a job whose outcome is recorded), so that
// the directory does not fill up. Whoever opened the file before the
// removal and locks it afterwards holds a lease on a finished job, which
// it finds finished.
func (l *Lease) Release(remove bool) error {
	var errs []error
	if remove {
		if err := os.Remove(l.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	errs = append(errs, l.f.Close()) // closing the file drops the lock
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("release lease %s: %w", filepath.Base(l.path), err)
	}
	return nil
}
