package testserver

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// BlockedOnPipe reports whether a thread of process pid sleeps in open(2)
// of a named pipe nobody writes: the tests' way to hold a worker at a
// chosen file (Linux only; false elsewhere).
func BlockedOnPipe(pid int) bool {
	tasks := fmt.Sprintf("/proc/%d/task", pid)
	entries, err := os.ReadDir(tasks)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if threadBlockedOnPipe(filepath.Join(tasks, e.Name())) {
			return true
		}
	}
	return false
}

// threadBlockedOnPipe reports whether the thread at /proc/PID/task/TID
// sleeps in open(2) of a named pipe: its wchan says so where the kernel
// shows it; where it shows only "0", a thread stuck in openat is taken to
// be it.
func threadBlockedOnPipe(task string) bool {
	w, err := os.ReadFile(filepath.Join(task, "wchan"))
	if err != nil {
		return false
	}
	switch string(w) {
	case "wait_for_partner":
		return true
	case "0", "":
		openat := map[string]string{"amd64": "257 ", "arm64": "56 "}[runtime.GOARCH]
		sc, err := os.ReadFile(filepath.Join(task, "syscall"))
		return err == nil && openat != "" && strings.HasPrefix(string(sc), openat)
	}
	return false
}
