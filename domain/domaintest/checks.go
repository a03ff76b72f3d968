package domaintest

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/piperun/piperun/domain"
)

// Single returns the only event of a decision, which must be an E.
func Single[E domain.Event](t *testing.T, events []domain.Event) E {
	t.Helper()
	var want E
	if len(events) != 1 {
		t.Fatalf("got %d events %v, want one %T", len(events), events, want)
	}
	e, ok := events[0].(E)
	if !ok {
		t.Fatalf("got %T, want %T", events[0], want)
	}
	return e
}

// CheckErr fails unless err is want (nil meaning success).
func CheckErr(t *testing.T, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("got error %v, want %v", err, want)
	}
}

// Snapshot deep-copies a run so that later events cannot change it.
func Snapshot(t *testing.T, r domain.Run) domain.Run {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var c domain.Run
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// JSONString returns v as indented JSON, for failure messages.
func JSONString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
