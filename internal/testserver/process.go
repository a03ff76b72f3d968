package testserver

import (
	"os/exec"
	"syscall"
	"time"
)

// Stop asks a started process to stop (SIGTERM) and waits for done, which
// its waiter closes once it has exited; after grace it kills the process.
// It reports whether the process stopped by itself in time. A process that
// has exited already is left alone.
func Stop(cmd *exec.Cmd, done <-chan struct{}, grace time.Duration) bool {
	select {
	case <-done:
		return true
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return true
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-done
		return false
	}
}
