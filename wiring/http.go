package wiring

import (
	"net/http"
	"time"

	"github.com/piperun/piperun/handlers/api"
)

// Defaults of HTTPLimits. A request, body included, must arrive within
// DefaultReadTimeout and its answer leave within DefaultWriteTimeout; a
// keep-alive connection with no request is closed after
// DefaultIdleTimeout. The live streams lift the connection's deadlines and
// bound each of their messages by the write timeout instead.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = time.Minute
	DefaultWriteTimeout      = 2 * time.Minute
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultMaxHeaderBytes    = 64 << 10
	// DefaultMaxBodyBytes is the API's bound (two configurations of up
	// to 1 MiB each, as an addition's request may carry, fit in it).
	DefaultMaxBodyBytes = api.MaxBodyBytes
)

// HTTPLimits bounds what one connection may hold of the server: time to
// send its request, time to take the answer, time kept open idle, and the
// size of its header and body. Zero fields take the defaults above.
type HTTPLimits struct {
	// ReadHeaderTimeout bounds reading a request's header (at most
	// ReadTimeout).
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included: a client
	// that trickles its body is cut off.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing an answer (from the end of the request's
	// header); for a live stream, writing each of its messages.
	WriteTimeout time.Duration
	// IdleTimeout is how long a keep-alive connection may wait for its
	// next request.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's header (431 past it).
	MaxHeaderBytes int
	// MaxBodyBytes bounds a request's body for every handler (413 past
	// it, from the handlers that read it).
	MaxBodyBytes int64
}

// withDefaults fills the zero fields.
func (l HTTPLimits) withDefaults() HTTPLimits {
	if l.ReadTimeout <= 0 {
		l.ReadTimeout = DefaultReadTimeout
	}
	if l.ReadHeaderTimeout <= 0 {
		l.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	l.ReadHeaderTimeout = min(l.ReadHeaderTimeout, l.ReadTimeout)
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = DefaultWriteTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = DefaultMaxBodyBytes
	}
	return l
}

// newHTTPServer returns an http.Server for h bounded by l (filled with
// defaults). Every request's body is bounded by l.MaxBodyBytes, whatever
// route serves it.
func newHTTPServer(h http.Handler, l HTTPLimits) *http.Server {
	l = l.withDefaults()
	return &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Body = http.MaxBytesReader(w, r.Body, l.MaxBodyBytes)
			h.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
	}
}
