// The HTTP status of each error: the one place that decides it.

package request

import (
	"context"
	"errors"
	"net/http"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/eventstore"
	"github.com/piperun/piperun/projections"
)

// ErrBadRequest: the request is malformed. HTTP 400.
var ErrBadRequest = errors.New("bad request")

// StatusFor maps errors to HTTP status codes: the one place that does, for
// the API and the pages alike.
func StatusFor(err error) int {
	var maxBytes *http.MaxBytesError
	switch {
	case errors.As(err, &maxBytes):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, ErrBadRequest), errors.Is(err, domain.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, domain.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, domain.ErrNotFound), errors.Is(err, projections.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, domain.ErrExists), errors.Is(err, domain.ErrRunBusy),
		errors.Is(err, domain.ErrNotRestorable), errors.Is(err, domain.ErrConflict), errors.Is(err, domain.ErrNotRunning),
		errors.Is(err, eventstore.ErrConcurrency):
		return http.StatusConflict
	case errors.Is(err, eventstore.ErrUnavailable), errors.Is(err, ErrReadModelsBehind):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
