//go:build linux

package faults

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// setFileSizeLimit sets the soft RLIMIT_FSIZE of process pid and returns
// the previous limit. With a soft limit of 0 every write to a regular file
// fails (EFBIG; Go ignores SIGXFSZ), as on a full disk or a read-only file
// system, while reads go on; raising it back needs no privilege.
func setFileSizeLimit(t *testing.T, pid int, cur uint64) (old syscall.Rlimit) {
	t.Helper()
	if _, _, errno := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, uintptr(pid), syscall.RLIMIT_FSIZE, 0, uintptr(unsafe.Pointer(&old)), 0, 0); errno != 0 {
		t.Fatalf("read the file size limit of %d: %v", pid, errno)
	}
	lim := syscall.Rlimit{Cur: cur, Max: old.Max}
	if _, _, errno := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, uintptr(pid), syscall.RLIMIT_FSIZE, uintptr(unsafe.Pointer(&lim)), 0, 0, 0); errno != 0 {
		t.Fatalf("set the file size limit of %d: %v", pid, errno)
	}
	return old
}

// unwritableCommands are state-changing requests that, on an unwritable
// data directory, must fail with 503 and a JSON error.
func unwritableCommands(run string) []struct {
	method, path string
	body         any
} {
	return []struct {
		method, path string
		body         any
	}{
		{http.MethodPost, "/api/v1/runs", map[string]string{"name": "while-full", "config": vastConfig("01")}},
		{http.MethodPut, "/api/v1/runs/" + run + "/config", map[string]string{"config": vastConfig("01", "02", "03", "04")}},
		{http.MethodPost, "/api/v1/runs/" + run + "/process", map[string]bool{"full_rerun": true}},
		{http.MethodDelete, "/api/v1/runs/" + run, nil},
	}
}

// TestUnwritableDataDirectory makes every write of the running server fail,
// as a full disk or a read-only data directory would: commands answer 503
// with a JSON error and change nothing, reads go on, nothing stored is
// damaged, and once writes are possible again the server carries on
// without a restart. The condition is made with the server's RLIMIT_FSIZE
// (no mount needed, so it runs anywhere on Linux); see
// TestFullFileSystem for a real full disk.
func TestUnwritableDataDirectory(t *testing.T) {
	c := newCluster(t)
	const run = "unwritable"
	c.must(http.StatusCreated, "alice", http.MethodPost, "/api/v1/runs", map[string]string{"name": run, "config": vastConfig("01", "02", "03")}, nil)
	before := c.process(run)
	eventsBefore := c.events(run)

	old := setFileSizeLimit(t, c.srv.cmd.Process.Pid, 0)
	for _, cmd := range unwritableCommands(run) {
		code, raw := c.do("alice", cmd.method, cmd.path, cmd.body, nil)
		if code != http.StatusServiceUnavailable {
			t.Fatalf("%s %s with an unwritable data directory: %d, want 503: %s", cmd.method, cmd.path, code, raw)
		}
		var e struct {
			Error string `json:"error"`
		}
		if err := json.Unmarshal(raw, &e); err != nil || !strings.Contains(e.Error, "storage unavailable") {
			t.Errorf("%s %s: the 503 does not say the storage is unavailable: %s", cmd.method, cmd.path, raw)
		}
	}
	// Reads go on, and show nothing changed.
	if v := c.run(run); !sameJSON(v, before) {
		t.Fatalf("the run changed while nothing could be written: %+v", v)
	}
	if evs := c.events(run); len(evs) != len(eventsBefore) {
		t.Fatalf("%d events after refused commands, %d before", len(evs), len(eventsBefore))
	}
	c.must(http.StatusNotFound, "alice", http.MethodGet, "/api/v1/runs/while-full", nil, nil)

	// Space returns: the same server takes the commands.
	setFileSizeLimit(t, c.srv.cmd.Process.Pid, old.Cur)
	c.must(http.StatusOK, "alice", http.MethodPut, "/api/v1/runs/"+run+"/config", map[string]string{"config": vastConfig("01", "02", "03", "04")}, nil)
	after := c.process(run)
	if after.NImages != 4 || !after.RestoreAvailable {
		t.Fatalf("after writes came back: %d images, restore available %v", after.NImages, after.RestoreAvailable)
	}
	c.must(http.StatusAccepted, "alice", http.MethodPost, "/api/v1/runs/"+run+"/restore", map[string]bool{}, nil)
	if v := c.settled(run, 60*time.Second); v.Status != "Completed" || !sameJSON(v.Products, before.Products) {
		t.Fatalf("restore after writes came back: %s with %d images", v.Status, v.NImages)
	}
	c.audit(run)
	c.checkProducts(c.run(run))

	// Nothing stored was damaged: stop the server and check the files.
	c.srv.stop()
	for _, f := range []string{"events.db", "read.db"} {
		integrityCheck(t, filepath.Join(c.dataDir, f))
	}
	c.start()
	c.audit(run)
}

// TestFullFileSystem puts the data directory on a small tmpfs and fills it:
// every command either succeeds whole or is refused (503 for want of
// space) and changes nothing, the server keeps serving, and once space is
// freed it catches up and works on. Then the file system is made read-only:
// the service refuses to start, saying why, and starts once it is writable. It needs to mount a file system (root with CAP_SYS_ADMIN),
// and is skipped otherwise; TestUnwritableDataDirectory needs no mount.
func TestFullFileSystem(t *testing.T) {
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v: %s); TestUnwritableDataDirectory covers unwritable storage without one", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", mnt, err, out)
		}
	})
	c := newClusterIn(t, filepath.Join(mnt, "data"))
	const run = "full"
	c.must(http.StatusCreated, "alice", http.MethodPost, "/api/v1/runs", map[string]string{"name": run, "config": vastConfig("01", "02", "03")}, nil)
	c.process(run)

	ballast := fill(t, mnt)
	accepted := map[string]bool{}
	for _, cmd := range unwritableCommands(run) {
		what := cmd.method + " " + cmd.path
		evs := len(c.events(run))
		code, raw, err := c.request(t.Context(), "alice", cmd.method, cmd.path, cmd.body)
		if err != nil {
			t.Fatalf("%s on a full disk: %v (did the server die?)\n%s", what, err, lastLines(c.srv.logText(), 40))
		}
		switch {
		case code == http.StatusServiceUnavailable, code == http.StatusConflict:
			// Refused for want of space, or by the run's state (a command
			// accepted before may have made it busy): nothing changes.
			if n := len(c.events(run)); n != evs {
				t.Fatalf("%s was refused with %d but the run went from %d to %d events", what, code, evs, n)
			}
		case code < 300:
			// SQLite may find room in pages it already has: then the command
			// is stored, and shown once the read models can be written.
			accepted[what] = true
		default:
			t.Fatalf("%s on a full disk: %d, want 503, 409 or success: %s", what, code, raw)
		}
	}
	t.Logf("accepted on the full disk: %v", accepted)

	// Space returns: the read models catch up with what was accepted, and
	// the server works on without a restart.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	if accepted["POST /api/v1/runs"] {
		deadline := time.Now().Add(30 * time.Second)
		for code, _ := c.do("alice", http.MethodGet, "/api/v1/runs/while-full", nil, nil); code != http.StatusOK; code, _ = c.do("alice", http.MethodGet, "/api/v1/runs/while-full", nil, nil) {
			if time.Now().After(deadline) {
				t.Fatal("a run created on the full disk never showed once space returned")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// What was accepted while the read models could not be written shows
	// once they catch up: judge the run's state after that, not before.
	caughtUp := time.Now().Add(60 * time.Second)
	for {
		evs := c.events(run)
		if v := c.run(run); len(evs) > 0 && v.Version == evs[len(evs)-1].Version {
			break
		}
		if time.Now().After(caughtUp) {
			t.Fatalf("the read models of run %s did not catch up with its events within 60s of space returning", run)
		}
		time.Sleep(20 * time.Millisecond)
	}
	v := c.settled(run, 60*time.Second)
	if v.Status == "Deleting" {
		t.Fatalf("run %s is stuck in Deleting", run)
	}
	if code, _ := c.do("alice", http.MethodGet, "/api/v1/runs/"+run, nil, nil); code == http.StatusOK {
		c.must(http.StatusOK, "alice", http.MethodPut, "/api/v1/runs/"+run+"/config", map[string]string{"config": vastConfig("01", "02", "03", "04")}, nil)
		c.must(http.StatusAccepted, "alice", http.MethodPost, "/api/v1/runs/"+run+"/process", map[string]bool{"full_rerun": true}, nil)
		if after := c.settled(run, 60*time.Second); after.Status != "Completed" || after.NImages != 4 {
			t.Fatalf("processing after space returned: %s with %d images", after.Status, after.NImages)
		}
		c.audit(run)
		c.checkProducts(c.run(run))
	}
	c.must(http.StatusCreated, "alice", http.MethodPost, "/api/v1/runs", map[string]string{"name": "after-full", "config": vastConfig("01")}, nil)
	c.process("after-full")
	c.audit("after-full")

	c.srv.stop()
	for _, f := range []string{"events.db", "read.db"} {
		integrityCheck(t, filepath.Join(c.dataDir, f))
	}

	// A read-only data directory: the service refuses to start, saying
	// why, rather than serving commands it could not keep; once writable
	// again, it starts with everything there.
	remount := func(mode string) {
		t.Helper()
		if out, err := exec.Command("mount", "-o", "remount,"+mode, mnt).CombinedOutput(); err != nil {
			t.Fatalf("remount %s %s: %v %s", mnt, mode, err, out)
		}
	}
	remount("ro")
	for _, args := range [][]string{
		{"serve", "--data-dir", c.dataDir, "--images-dir", c.images, "--addr", "127.0.0.1:0"},
		{"user", "add", "carol", "--data-dir", c.dataDir},
	} {
		cmd := c.command(args...)
		done := make(chan struct{})
		var out []byte
		var err error
		go func() { out, err = cmd.CombinedOutput(); close(done) }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("piperun %s ran on a read-only data directory", args[0])
		}
		if err == nil || !strings.Contains(string(out), "storage unavailable") || !strings.Contains(string(out), "events.db") {
			t.Errorf("piperun %s on a read-only data directory: %v, output:\n%s", args[0], err, out)
		}
	}
	remount("rw")
	c.start()
	c.audit("after-full")
	if v := c.run("after-full"); v.Status != "Completed" {
		t.Fatalf("after the read-only spell: %s", v.Status)
	}
}

// fill writes a file in dir until the file system is full, and returns its
// path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "ballast")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return path
			}
			t.Fatalf("fill %s: %v", dir, err)
		}
	}
}

// TestReadModelsLockedForLong holds the read-model database's write lock
// longer than the server waits for it (its busy timeout, 10s), as a
// `piperun projections rebuild` or a stalled disk could: the projector and
// the relay fail, and must be restarted rather than take the service down;
// once the lock is gone, the read models catch up and the run's work goes
// on.
func TestReadModelsLockedForLong(t *testing.T) {
	c := newCluster(t)
	release := lockDB(t, filepath.Join(c.dataDir, "read.db"))
	// Stored; its answer waits for the read models as long as it may.
	c.must(http.StatusCreated, "alice", http.MethodPost, "/api/v1/runs", map[string]string{"name": "locked-out", "config": vastConfig("01", "02")}, nil)
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(c.srv.logText(), `msg="projector failed; restarting it"`) {
		select {
		case <-c.srv.done:
			release()
			t.Fatalf("the server exited when its read models stayed locked:\n%s", lastLines(c.srv.logText(), 20))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			release()
			t.Fatal("the projector did not give up on the locked read models within 60s")
		}
	}
	release()
	deadline = time.Now().Add(60 * time.Second)
	for code, _ := c.do("alice", http.MethodGet, "/api/v1/runs/locked-out", nil, nil); code != http.StatusOK; code, _ = c.do("alice", http.MethodGet, "/api/v1/runs/locked-out", nil, nil) {
		if time.Now().After(deadline) {
			t.Fatal("the read models did not catch up within 60s of the lock's release")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if v := c.process("locked-out"); v.NImages != 2 {
		t.Fatalf("processing after the lock: %d images", v.NImages)
	}
	c.audit("locked-out")
}
