package e2ekit

import (
	"strings"
	"testing"
	"time"
)

// WaitFor polls cond until it holds; explain, if given, says what was
// seen when it times out.
func WaitFor(t *testing.T, limit time.Duration, what string, cond func() bool, explain ...func() string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			var seen []string
			for _, f := range explain {
				seen = append(seen, f())
			}
			t.Fatalf("timed out after %s waiting for %s\n%s", limit, what, strings.Join(seen, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
