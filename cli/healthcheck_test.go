package cli

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHealthcheck asks a real server, one that says it is not ready, a
// port nobody listens on, and a URL that is not one.
func TestHealthcheck(t *testing.T) {
	srv := startServer(t, t.TempDir())
	notReady := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "not ready: relay cannot publish: kafka down", http.StatusServiceUnavailable)
	}))
	defer notReady.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/readyz"
	ln.Close()

	tests := []struct {
		name     string
		args     []string
		code     int
		inStdout string
		inStderr string
	}{
		{"ready server", []string{"--url", srv.URL + "/readyz"}, ExitOK, "healthy: {\"status\":\"ready\"}", ""},
		{"live server", []string{"--url", srv.URL + "/healthz"}, ExitOK, "healthy", ""},
		{"not ready", []string{"--url", notReady.URL + "/readyz"}, ExitFailure, "", "answered 503: not ready: relay cannot publish: kafka down"},
		{"missing page", []string{"--url", srv.URL + "/nowhere"}, ExitFailure, "", "answered 404"},
		{"nobody listens", []string{"--url", closed}, ExitFailure, "", "unhealthy:"},
		{"not a URL", []string{"--url", "localhost:8080"}, ExitUsage, "", "is not an http:// or https:// URL"},
		{"bad timeout", []string{"--url", srv.URL + "/readyz", "--timeout", "soon"}, ExitUsage, "", "--timeout must be a positive duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := piperun(t, "", append([]string{"healthcheck"}, tt.args...)...)
			if r.code != tt.code || !strings.Contains(r.stdout, tt.inStdout) || !strings.Contains(r.stderr, tt.inStderr) {
				t.Fatalf("want exit %d, stdout with %q, stderr with %q; got %s", tt.code, tt.inStdout, tt.inStderr, r)
			}
		})
	}
}
