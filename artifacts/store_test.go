package artifacts

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func put(t *testing.T, s *Store, content string) (string, int64) {
	t.Helper()
	d, n, err := s.Put(context.Background(), strings.NewReader(content))
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	return d, n
}

func TestPutOpenRoundTrip(t *testing.T) {
	s := newStore(t)
	d, n := put(t, s, "hello")
	// sha256("hello")
	want := "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
	if d != want || n != 5 {
		t.Fatalf("Put = %s, %d; want %s, 5", d, n, want)
	}
	if d != Digest([]byte("hello")) {
		t.Fatalf("Digest disagrees with Put")
	}
	p := filepath.Join(s.Dir(), "sha256", "2c", want[len("sha256:")+2:])
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("file not at its content address: %v", err)
	}
	rc, err := s.Open(d)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil || string(got) != "hello" {
		t.Fatalf("Open read %q, %v", got, err)
	}
	if ok, err := s.Has(d); !ok || err != nil {
		t.Fatalf("Has = %v, %v", ok, err)
	}
	if err := s.Verify(context.Background(), d, n); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestPutIsIdempotentAndLeavesNoTempFiles(t *testing.T) {
	s := newStore(t)
	d1, _ := put(t, s, "same")
	d2, _ := put(t, s, "same")
	if d1 != d2 {
		t.Fatalf("digests differ: %s %s", d1, d2)
	}
	var files []string
	filepath.WalkDir(s.Dir(), func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			files = append(files, p)
		}
		return err
	})
	p, _ := s.path(d1)
	want := []string{p, s.stampLocation(d1)}
	if !slices.Equal(files, want) {
		t.Fatalf("store holds %v, want exactly the content and its stamp %v", files, want)
	}
}

func TestPutEmptyContent(t *testing.T) {
	s := newStore(t)
	d, n := put(t, s, "")
	if n != 0 || d != "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Fatalf("Put(empty) = %s, %d", d, n)
	}
	if err := s.Verify(context.Background(), d, 0); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentPutsOfSameContent(t *testing.T) {
	s := newStore(t)
	content := bytes.Repeat([]byte("x"), 1<<16)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := s.Put(context.Background(), bytes.NewReader(content))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Verify(context.Background(), Digest(content), int64(len(content))); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyDetectsMissingAndCorrupt(t *testing.T) {
	s := newStore(t)
	d, n := put(t, s, "payload")
	missing := Digest([]byte("never stored"))
	p, _ := s.path(d)

	tests := []struct {
		name   string
		digest string
		size   int64
		damage func(t *testing.T)
		want   error
	}{
		{name: "missing", digest: missing, size: 1, want: ErrMissing},
		{name: "wrong size", digest: d, size: n + 1, want: ErrCorrupt},
		{name: "changed bytes", digest: d, size: n, damage: func(t *testing.T) {
			if err := os.Chmod(p, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("PAYLOAD"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, want: ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.damage != nil {
				tt.damage(t)
			}
			err := s.Verify(context.Background(), tt.digest, tt.size)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.digest) {
				t.Errorf("error %q does not name the digest", err)
			}
		})
	}
}

func TestPutRepairsCorruptCopy(t *testing.T) {
	s := newStore(t)
	d, n := put(t, s, "payload")
	p, _ := s.path(d)
	os.Chmod(p, 0o644)
	if err := os.WriteFile(p, []byte("PAYLOAD"), 0o644); err != nil {
		t.Fatal(err)
	}
	put(t, s, "payload")
	if err := s.Verify(context.Background(), d, n); err != nil {
		t.Fatalf("after re-Put: %v", err)
	}
}

func TestDelete(t *testing.T) {
	s := newStore(t)
	d, _ := put(t, s, "gone soon")
	if err := s.Delete(d); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Has(d); ok {
		t.Fatal("Has after Delete = true")
	}
	if _, err := s.Open(d); !errors.Is(err, ErrMissing) {
		t.Fatalf("Open after Delete = %v, want ErrMissing", err)
	}
	if err := s.Delete(d); err != nil {
		t.Fatalf("second Delete = %v, want nil", err)
	}
}

func TestInvalidDigestsNeverBecomePaths(t *testing.T) {
	s := newStore(t)
	valid := Digest([]byte("x"))
	bad := []string{
		"",
		"sha256:",
		"md5:" + valid[7:],
		valid[7:],
		valid + "0",
		valid[:len(valid)-1],
		"sha256:../../../../../../etc/passwd" + strings.Repeat("0", 31),
		"sha256:" + strings.ToUpper(valid[7:]),
		"sha256:" + strings.Repeat("g", 64),
		"sha256:" + strings.Repeat("0", 62) + "/.",
	}
	for _, d := range bad {
		if err := ValidDigest(d); !errors.Is(err, ErrInvalidDigest) {
			t.Errorf("ValidDigest(%q) = %v", d, err)
		}
		if _, err := s.Open(d); !errors.Is(err, ErrInvalidDigest) {
			t.Errorf("Open(%q) = %v", d, err)
		}
		if _, err := s.Has(d); !errors.Is(err, ErrInvalidDigest) {
			t.Errorf("Has(%q) = %v", d, err)
		}
		if err := s.Verify(context.Background(), d, 0); !errors.Is(err, ErrInvalidDigest) {
			t.Errorf("Verify(%q) = %v", d, err)
		}
		if err := s.Delete(d); !errors.Is(err, ErrInvalidDigest) {
			t.Errorf("Delete(%q) = %v", d, err)
		}
	}
}

func TestPutHonoursCancellation(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.Put(ctx, strings.NewReader("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with cancelled ctx = %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(s.Dir(), "sha256"))
	if len(entries) != 0 {
		t.Fatalf("cancelled Put left %v", entries)
	}
}

func TestPutReportsReaderErrors(t *testing.T) {
	s := newStore(t)
	boom := errors.New("boom")
	_, _, err := s.Put(context.Background(), io.MultiReader(strings.NewReader("part"), errReader{boom}))
	if !errors.Is(err, boom) {
		t.Fatalf("Put = %v, want %v", err, boom)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
