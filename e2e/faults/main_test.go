//go:build unix

package faults

import (
	"os"
	"testing"

	"github.com/piperun/piperun/internal/e2ekit"
)

// binary is the piperun binary that TestMain builds.
var binary string

func TestMain(m *testing.M) {
	// The test binary doubles as the appending process that
	// TestCrashDuringAppend kills.
	if path := os.Getenv(appendChildEnv); path != "" {
		os.Exit(appendChild(path))
	}
	os.Exit(e2ekit.RunWithBinary(m, &binary))
}
