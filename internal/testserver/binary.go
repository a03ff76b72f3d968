package testserver

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// BuildBinary builds ./cmd/piperun into a new temporary directory, for
// tests that run piperun as a subprocess (to kill it, say). cleanup removes
// the directory.
func BuildBinary() (path string, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "piperun-bin-")
	if err != nil {
		return "", nil, fmt.Errorf("build piperun: %w", err)
	}
	cleanup = func() { os.RemoveAll(dir) }
	root, err := ModuleRoot()
	if err != nil {
		cleanup()
		return "", nil, err
	}
	path = filepath.Join(dir, "piperun")
	build := exec.Command("go", "build", "-o", path, "./cmd/piperun")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("build piperun: %w\n%s", err, out)
	}
	return path, cleanup, nil
}

// ModuleRoot returns the directory holding go.mod, above the working
// directory (a test's package directory).
func ModuleRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no go.mod above %s", d)
		}
		d = parent
	}
}
