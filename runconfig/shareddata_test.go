package runconfig

import (
	"os"
	"path/filepath"
	"testing"
)

// vastTestData returns the shared VAST test data directory
// (../shared/testdata/vast relative to the repository root). It skips the
// test when the data is missing, except under CI, where missing data is a
// failure rather than a silent pass.
func vastTestData(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("working directory: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no go.mod above the test's directory")
		}
		dir = parent
	}
	data := filepath.Join(dir, "..", "shared", "testdata", "vast")
	if _, err := os.Stat(filepath.Join(data, "expected", "basic-association", "config.yaml")); err != nil {
		msg := "VAST test data not found: this test needs ../shared/testdata/vast (relative to the repository root) from the askap-vast/vast-pipeline test suite: " + err.Error()
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return data
}
