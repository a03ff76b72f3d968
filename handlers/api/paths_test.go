package api_test

import (
	"net/http"
	"testing"
)

// TestPathsAreNotCleaned checks that paths with "." or ".." segments or
// doubled slashes are answered as they come, with a JSON 404 that changes
// nothing, not redirected to the cleaned path (which would name another
// resource: /runs/fz/../x/restore is not /runs/x/restore).
func TestPathsAreNotCleaned(t *testing.T) {
	fx := newFixture(t)
	for _, c := range []struct{ method, target string }{
		{http.MethodGet, "/api/v1/runs/.."},
		{http.MethodGet, "/api/v1/runs/./restore"},
		{http.MethodPost, "/api/v1/runs/./restore"},
		{http.MethodPost, "/api/v1/runs/../runs/fz/restore"},
		{http.MethodPost, "/api/v1/runs/x/../fz/restore"},
		{http.MethodDelete, "/api/v1/runs/fz/.."},
		{http.MethodGet, "/api/v1//runs"},
		{http.MethodGet, "/api/v1/runs/fz/products/../products"},
	} {
		o := fx.exercise(t, c.method+" "+c.target, c.method, c.target, fx.as("alice"), nil)
		checkSafe(t, c.method+" "+c.target, o)
		if o.code != http.StatusNotFound {
			t.Errorf("%s %s: HTTP %d, want 404: %s", c.method, c.target, o.code, o.body)
		}
	}
}
