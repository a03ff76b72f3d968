//go:build unix

package unsynced

import (
	"errors"
	"os"
	"syscall"
)

var errUnsupported = errors.New("flock not supported")

// flock takes an exclusive or shared lock on f, waiting for it or not; got
// is false when it did not wait and another holder had a conflicting lock.
// A conversion (shared to exclusive, or back) may drop the lock held
// before, as flock(2) says.
func flock(f *os.File, exclusive, wait bool) (got bool, err error) {
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	if !wait {
		how |= syscall.LOCK_NB
	}
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	switch {
	case errors.Is(err, syscall.EWOULDBLOCK):
		return false, nil
	case errors.Is(err, syscall.ENOSYS), errors.Is(err, syscall.ENOTSUP), errors.Is(err, syscall.EOPNOTSUPP):
		return false, errUnsupported
	}
	return err == nil, err
}
