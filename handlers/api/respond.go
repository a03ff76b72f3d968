// Reading request bodies and writing JSON answers and errors.

package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/piperun/piperun/handlers/request"
)

func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

// writeError answers err as JSON, with its status (request.StatusFor).
func writeError(w http.ResponseWriter, err error) {
	code := request.StatusFor(err)
	msg := err.Error()
	if code == http.StatusInternalServerError {
		msg = "internal error: " + msg
	}
	if errors.Is(err, request.ErrReadModelsBehind) {
		w.Header().Set("Retry-After", request.RetryAfterSeconds)
	}
	writeJSON(w, code, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// decode reads a JSON body strictly.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var maxBytes *http.MaxBytesError
		if errors.As(err, &maxBytes) {
			return fmt.Errorf("request body larger than %d bytes: %w", MaxBodyBytes, err)
		}
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: the request body is empty; a JSON object is expected", request.ErrBadRequest)
		}
		return fmt.Errorf("%w: malformed JSON body: %v", request.ErrBadRequest, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: trailing data after the JSON object", request.ErrBadRequest)
	}
	// More stops at the first read error, the body limit included: read to
	// the end so that a body padded past the limit with white space is
	// refused too, not decided on its first 2 MiB.
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		var maxBytes *http.MaxBytesError
		if errors.As(err, &maxBytes) {
			return fmt.Errorf("request body larger than %d bytes: %w", MaxBodyBytes, err)
		}
		return fmt.Errorf("%w: read request body: %v", request.ErrBadRequest, err)
	}
	return nil
}

// decodeOptional is decode for bodies that may be empty (all fields
// optional).
func decodeOptional(r *http.Request, v any) error {
	if r.ContentLength == 0 && r.Header.Get("Transfer-Encoding") == "" {
		return nil
	}
	err := decode(r, v)
	if err != nil && strings.Contains(err.Error(), "request body is empty") {
		return nil
	}
	return err
}
