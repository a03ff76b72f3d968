package inputs

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mustReturn runs fn and fails the test if it has not returned within a
// generous bound, so that an open that blocks fails the test instead of
// hanging it; unblock then releases whatever fn is stuck on.
func mustReturn(t *testing.T, unblock func(), fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		unblock()
		<-done
		t.Fatal("the call blocked")
	}
}

// unblockFIFO opens the FIFO's write end, which releases a reader blocked
// in open, and closes it, which ends its reads.
func unblockFIFO(path string) func() {
	return func() {
		if w, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func openRoot(t *testing.T, dir string) *Root {
	t.Helper()
	r, err := OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestOpenReadsRegularFilesInsideTheRoot(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.txt"), "a")
	write(t, filepath.Join(dir, "sub", "b.txt"), "b")
	if err := os.Symlink("../a.txt", filepath.Join(dir, "sub", "link.txt")); err != nil {
		t.Fatal(err)
	}
	r := openRoot(t, dir)
	for rel, want := range map[string]string{"a.txt": "a", "sub/b.txt": "b", "sub/link.txt": "a", "sub/../a.txt": "a"} {
		f, err := r.Open(rel)
		if err != nil {
			t.Errorf("Open(%s): %v", rel, err)
			continue
		}
		got, err := io.ReadAll(f)
		f.Close()
		if err != nil || string(got) != want {
			t.Errorf("Open(%s) read %q, %v; want %q", rel, got, err, want)
		}
	}
}

func TestOpenRefusesWhatIsNotARegularFileInsideTheRoot(t *testing.T) {
	outside := t.TempDir()
	write(t, filepath.Join(outside, "secret.txt"), "secret")
	dir := t.TempDir()
	write(t, filepath.Join(dir, "x.txt"), "x")
	if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(dir, "escape.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../"+filepath.Base(outside)+"/secret.txt", filepath.Join(dir, "relescape.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "outdir")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "adir"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := openRoot(t, dir)
	tests := []struct {
		rel, why string
	}{
		{"escape.txt", "symbolic link leading outside the images root"},
		{"relescape.txt", "symbolic link leading outside the images root"},
		{"outdir/secret.txt", "escapes"},
		{"../" + filepath.Base(outside) + "/secret.txt", "leaves the images root"},
		{"/etc/passwd", "leaves the images root"},
		{"adir", "directory"},
	}
	for _, tt := range tests {
		f, err := r.Open(tt.rel)
		if err == nil {
			b, _ := io.ReadAll(f)
			f.Close()
			t.Errorf("Open(%s) read %q, want it refused", tt.rel, b)
			continue
		}
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tt.why) || !strings.Contains(err.Error(), tt.rel) {
			t.Errorf("Open(%s) = %v, want ErrRefused naming the path and saying %q", tt.rel, err, tt.why)
		}
		if strings.Contains(err.Error(), dir) || strings.Contains(err.Error(), outside) {
			t.Errorf("Open(%s) error %q shows an absolute path", tt.rel, err)
		}
	}
	if _, err := r.Open("absent.txt"); !errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "absent.txt") {
		t.Errorf("Open(absent.txt) = %v, want not-exist naming the file", err)
	}
}

func TestOpenRefusesAFIFOWithoutBlocking(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "cat.txt")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("cannot make a FIFO here: %v", err)
	}
	r := openRoot(t, dir)
	var err error
	mustReturn(t, unblockFIFO(fifo), func() {
		var f *os.File
		if f, err = r.Open("cat.txt"); err == nil {
			f.Close()
		}
	})
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "FIFO") {
		t.Errorf("Open(FIFO) = %v, want refused as a FIFO", err)
	}
	mustReturn(t, unblockFIFO(fifo), func() {
		var f *os.File
		if f, err = OpenFile(fifo); err == nil {
			f.Close()
		}
	})
	if !errors.Is(err, ErrRefused) {
		t.Errorf("OpenFile(FIFO) = %v, want refused", err)
	}
}

func TestOpenRefusesADevice(t *testing.T) {
	dir := t.TempDir()
	dev := filepath.Join(dir, "null.fits")
	if err := syscall.Mknod(dev, syscall.S_IFCHR|0o644, 1<<8|3); err != nil {
		t.Skipf("cannot make a device node here (needs privileges): %v", err)
	}
	_, err := openRoot(t, dir).Open("null.fits")
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "device") {
		t.Errorf("Open(device) = %v, want refused as a device", err)
	}
}

func TestOpenFileReadsOneFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "one.txt")
	write(t, p, "one")
	f, err := OpenFile(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if b, _ := io.ReadAll(f); string(b) != "one" {
		t.Errorf("read %q", b)
	}
	if _, err := OpenFile(filepath.Dir(p)); !errors.Is(err, ErrRefused) {
		t.Errorf("OpenFile(directory) = %v, want refused", err)
	}
}
