package domain

import (
	"errors"
	"fmt"
)

// Sentinel errors of the run aggregate. Decisions wrap them with a reason;
// handlers map them to HTTP codes in one place.
var (
	// ErrInvalid: the command itself is malformed (bad name, too long a
	// description, unusable configuration). HTTP 400.
	ErrInvalid = errors.New("invalid")
	// ErrForbidden: the actor may not do this to this run. HTTP 403.
	ErrForbidden = errors.New("forbidden")
	// ErrNotFound: no such run (or it was deleted). HTTP 404.
	ErrNotFound = errors.New("not found")
	// ErrExists: a run of that name exists. HTTP 409.
	ErrExists = errors.New("already exists")
	// ErrRunBusy: the run's status does not allow the command now. HTTP 409.
	ErrRunBusy = errors.New("run busy")
	// ErrNotRestorable: the run has no backup or is in a status from which it
	// cannot be restored. HTTP 409.
	ErrNotRestorable = errors.New("not restorable")
	// ErrConflict: the command contradicts the run's history (e.g. a
	// configuration change that is not an addition of images). HTTP 409.
	ErrConflict = errors.New("conflict")
	// ErrNotRunning: the command needs a Queued or Running run (a
	// cancellation). HTTP 409.
	ErrNotRunning = errors.New("not running")
)

func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}
