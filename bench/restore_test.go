package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestRestoreRunsEndToEnd runs the restore benchmark on tiny runs: every
// seeded run must be restored to Completed over HTTP.
func TestRestoreRunsEndToEnd(t *testing.T) {
	var out bytes.Buffer
	res, err := Restore(context.Background(), RestoreOptions{Sizes: []int64{10, 1000}, Restores: 2, Dir: t.TempDir()}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(res) != 2 {
		t.Fatalf("%d results, want 2", len(res))
	}
	for _, r := range res {
		if len(r.Completed) != 2 || r.BackupBytes <= 0 {
			t.Errorf("size %d: %d restores timed, backup of %d bytes", r.Measurements, len(r.Completed), r.BackupBytes)
		}
		for i, d := range r.Completed {
			if d < r.Accepted[i] {
				t.Errorf("size %d: completed in %s before being accepted in %s", r.Measurements, d, r.Accepted[i])
			}
		}
	}
	if !strings.Contains(out.String(), "completed p50 ms") {
		t.Errorf("no table in the output:\n%s", out.String())
	}
}
