package unsynced

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// boot makes BootID return id for the rest of the test.
func boot(t *testing.T, id string) {
	t.Helper()
	old := BootID
	BootID = func() (string, error) { return id, nil }
	t.Cleanup(func() { BootID = old })
}

// opener opens the guard of path, counting the discards it asks for.
type opener struct {
	t        *testing.T
	path     string
	discards int
}

func (o *opener) open() *Guard {
	o.t.Helper()
	g, err := Open(o.path, func() error { o.discards++; return os.Remove(o.path) })
	if err != nil {
		o.t.Fatal(err)
	}
	if !g.Unsynced() {
		o.t.Fatal("guard does not allow unsynced writes with a boot ID and flock")
	}
	return g
}

// crash drops g's lock as the kernel does for a killed process: no sync,
// the marker stays.
func crash(g *Guard) { g.lock.Close(); g.lock = nil }

func marker(t *testing.T, path string) (string, bool) {
	t.Helper()
	b, err := os.ReadFile(markerPath(path))
	if errors.Is(err, os.ErrNotExist) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b), true
}

func newOpener(t *testing.T) *opener {
	path := filepath.Join(t.TempDir(), "read.db")
	if err := os.WriteFile(path, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &opener{t: t, path: path}
}

func TestCleanCloseClearsTheMarker(t *testing.T) {
	boot(t, "boot-1")
	o := newOpener(t)
	g := o.open()
	if m, ok := marker(t, o.path); !ok || m != "boot-1\n" {
		t.Fatalf("marker while open: %q, %v; want boot-1", m, ok)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if m, ok := marker(t, o.path); ok {
		t.Fatalf("marker %q left after the last close", m)
	}
	boot(t, "boot-2") // a restart after a clean close keeps the file
	if err := o.open().Close(); err != nil {
		t.Fatal(err)
	}
	if o.discards != 0 {
		t.Fatalf("%d discards after clean closes", o.discards)
	}
}

func TestCrashKeepsTheFileWithinABoot(t *testing.T) {
	boot(t, "boot-1")
	o := newOpener(t)
	crash(o.open())
	g := o.open()
	if o.discards != 0 {
		t.Fatal("a process crash (same boot) discarded the file")
	}
	if m, ok := marker(t, o.path); !ok || m != "boot-1\n" {
		t.Fatalf("marker %q, %v; want boot-1", m, ok)
	}
	g.Close()
}

func TestCrashThenRestartDiscards(t *testing.T) {
	boot(t, "boot-1")
	o := newOpener(t)
	crash(o.open())
	boot(t, "boot-2")
	g := o.open()
	if o.discards != 1 {
		t.Fatalf("%d discards after unsynced writes and a restart, want 1", o.discards)
	}
	if _, err := os.Stat(o.path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("file still there after the discard: %v", err)
	}
	if m, _ := marker(t, o.path); m != "boot-2\n" {
		t.Fatalf("marker %q after the discard, want boot-2", m)
	}
	// Once discarded, a second open in the same boot keeps what is there.
	crash(g)
	o.open().Close()
	if o.discards != 1 {
		t.Fatalf("%d discards, want still 1", o.discards)
	}
}

func TestOnlyTheLastCloserSyncs(t *testing.T) {
	boot(t, "boot-1")
	o := newOpener(t)
	a, b := o.open(), o.open() // two processes: flock is per open file
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := marker(t, o.path); !ok {
		t.Fatal("the marker went while another process still has the file open")
	}
	c := o.open()
	crash(b)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if m, ok := marker(t, o.path); ok {
		t.Fatalf("marker %q left by the last closer", m)
	}
	if o.discards != 0 {
		t.Fatalf("%d discards", o.discards)
	}
}

func TestSecondOpenerDoesNotDiscardUnderTheFirst(t *testing.T) {
	boot(t, "boot-1")
	o := newOpener(t)
	crash(o.open())
	boot(t, "boot-2")
	a := o.open() // discards once
	if err := os.WriteFile(o.path, []byte("rebuilt"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := o.open()
	if o.discards != 1 {
		t.Fatalf("%d discards, want 1: the second opener must trust the first's check", o.discards)
	}
	if got, _ := os.ReadFile(o.path); string(got) != "rebuilt" {
		t.Fatalf("file is %q", got)
	}
	a.Close()
	b.Close()
}

func TestWithoutABootIDTheCallerSyncs(t *testing.T) {
	old := BootID
	BootID = func() (string, error) { return "", errors.New("no boot_id here") }
	t.Cleanup(func() { BootID = old })
	o := newOpener(t)
	g, err := Open(o.path, func() error { o.discards++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if g.Unsynced() {
		t.Fatal("unsynced writes allowed without a boot ID")
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := marker(t, o.path); ok || o.discards != 0 {
		t.Fatal("a guard without a boot ID touched the marker or the file")
	}
	if _, err := os.Stat(lockPath(o.path)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("lock file made without a boot ID: %v", err)
	}
}

func TestTheMachineHasABootID(t *testing.T) {
	if _, err := os.Stat("/proc/sys/kernel/random/boot_id"); err != nil {
		t.Skip("not Linux: the read models sync as before")
	}
	a, err := linuxBootID()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := linuxBootID()
	if a == "" || a != b {
		t.Fatalf("boot IDs %q and %q", a, b)
	}
}

// TestUnwritableMarkerMeansSyncing: when the marker cannot be written (a
// full disk, say), Open still succeeds and holds the guard, but says to
// sync; a second process then neither discards the file under the first
// nor writes without syncs; the last to close clears what it can.
func TestUnwritableMarkerMeansSyncing(t *testing.T) {
	boot(t, "boot-1")
	o := newOpener(t)
	crash(o.open())
	boot(t, "boot-2")
	// The marker's temporary file cannot be created.
	if err := os.Mkdir(markerPath(o.path)+".tmp", 0o700); err != nil {
		t.Fatal(err)
	}
	open := func() *Guard {
		t.Helper()
		g, err := Open(o.path, func() error { o.discards++; return os.Remove(o.path) })
		if err != nil {
			t.Fatalf("Open with an unwritable marker: %v", err)
		}
		if g.Unsynced() {
			t.Fatal("unsynced writes allowed though the marker could not be set for this boot")
		}
		return g
	}
	a := open()
	if o.discards != 1 {
		t.Fatalf("%d discards, want 1 (the earlier boot's writes)", o.discards)
	}
	if err := os.WriteFile(o.path, []byte("rebuilt, synced"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := open()
	if o.discards != 1 {
		t.Fatalf("%d discards: the second process discarded the file under the first", o.discards)
	}
	a.Close()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := marker(t, o.path); ok {
		t.Fatal("the last closer left the earlier boot's marker after syncing")
	}
	if got, _ := os.ReadFile(o.path); string(got) != "rebuilt, synced" {
		t.Fatalf("file is %q", got)
	}
}

// TestUnreadableMarkerRefusesTheFile: a marker that cannot be read cannot
// tell whether the file survived a restart; Open fails rather than trust it.
func TestUnreadableMarkerRefusesTheFile(t *testing.T) {
	boot(t, "boot-1")
	o := newOpener(t)
	if err := os.Mkdir(markerPath(o.path), 0o700); err != nil { // reading a directory fails
		t.Fatal(err)
	}
	g, err := Open(o.path, func() error { o.discards++; return nil })
	if err == nil {
		g.Close()
		t.Fatal("Open trusted a file whose marker it could not read")
	}
	if o.discards != 0 {
		t.Fatalf("%d discards", o.discards)
	}
	// The lock was let go: once the marker is readable, the file opens.
	if err := os.Remove(markerPath(o.path)); err != nil {
		t.Fatal(err)
	}
	o.open().Close()
}
