//go:build unix

package lease

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

const holderEnv = "PIPERUN_TEST_LEASE_HOLDER"

// TestMain lets the test binary be the process that holds a lease and dies.
func TestMain(m *testing.M) {
	if dir := os.Getenv(holderEnv); dir != "" {
		d, err := Open(dir)
		if err != nil {
			os.Exit(3)
		}
		if _, ok, err := d.TryAcquire("job-1"); err != nil || !ok {
			os.Exit(4)
		}
		os.Stdout.WriteString("held\n")
		select {} // until killed
	}
	os.Exit(m.Run())
}

func TestLeases(t *testing.T) {
	d, err := Open(filepath.Join(t.TempDir(), "leases"))
	if err != nil {
		t.Fatal(err)
	}
	l, ok, err := d.TryAcquire("job-1")
	if err != nil || !ok {
		t.Fatalf("first acquire: %v, %v", ok, err)
	}
	if _, ok, err := d.TryAcquire("job-1"); err != nil || ok {
		t.Fatalf("second acquire while held: ok %v, %v", ok, err)
	}
	if _, ok, err := d.TryAcquire("job-2"); err != nil || !ok {
		t.Fatalf("another name: ok %v, %v", ok, err)
	}
	if err := l.Release(false); err != nil {
		t.Fatal(err)
	}
	l, ok, err = d.TryAcquire("job-1")
	if err != nil || !ok {
		t.Fatalf("acquire after release: %v, %v", ok, err)
	}
	if err := l.Release(true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d.path, "job-1")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("lease file after Release(true): %v", err)
	}
	for _, bad := range []string{"", ".", "..", "a/b", `a\b`} {
		if _, _, err := d.TryAcquire(bad); !errors.Is(err, ErrBadName) {
			t.Errorf("TryAcquire(%q): %v, want ErrBadName", bad, err)
		}
	}
}

// TestLeaseOfAKilledProcess checks that a lease held by a process killed
// with SIGKILL is free at once.
func TestLeaseOfAKilledProcess(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "leases")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holderEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "held\n" {
		cmd.Process.Kill()
		t.Fatalf("holder: %q, %v", line, err)
	}
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := d.TryAcquire("job-1"); err != nil || ok {
		t.Fatalf("acquired a lease a live process holds: ok %v, %v", ok, err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if _, ok, err := d.TryAcquire("job-1"); err != nil || !ok {
		t.Fatalf("lease of the killed holder: ok %v, %v", ok, err)
	}
}
