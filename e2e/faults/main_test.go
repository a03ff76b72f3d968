//go:build unix

package faults

import (
	"fmt"
	"github.com/piperun/piperun/internal/testserver"
	"os"
	"testing"
)

// binary is the piperun binary that TestMain builds.
var binary string

func TestMain(m *testing.M) {
	// The test binary doubles as the appending process that
	// TestCrashDuringAppend kills.
	if path := os.Getenv(appendChildEnv); path != "" {
		os.Exit(appendChild(path))
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	path, cleanup, err := testserver.BuildBinary()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cleanup()
	binary = path
	return m.Run()
}
