package e2ekit

import (
	"fmt"
	"os"
	"testing"

	"github.com/piperun/piperun/internal/testserver"
)

// RunWithBinary builds the piperun binary, stores its path in binary, runs
// the tests and removes the binary; it returns the exit code for TestMain.
func RunWithBinary(m *testing.M, binary *string) int {
	path, cleanup, err := testserver.BuildBinary()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cleanup()
	*binary = path
	return m.Run()
}
