package artifacts

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// futureClock makes the stamps Verify writes trusted at once, as if the
// file had been hashed long after its last change.
func futureClock(s *Store) { s.now = func() time.Time { return time.Now().Add(time.Hour) } }

// stateAt returns the stamped state of the file at p.
func stateAt(t *testing.T, p string) fileState {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	st, ok := stateOf(fi)
	if !ok {
		t.Skip("this platform's stat is not stamped: Verify always hashes")
	}
	return st
}

// rewriteInPlace changes the file's bytes without changing its size,
// inode or modification time, then waits until its change time differs
// from before (the kernel's file clock ticks every few milliseconds; a
// chmod moves the change time to the current tick).
func rewriteInPlace(t *testing.T, p string, content []byte) {
	t.Helper()
	before := stateAt(t, p)
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(content, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	for stateAt(t, p).ctime == before.ctime {
		if err := os.Chmod(p, 0o444); err != nil {
			t.Fatal(err)
		}
	}
	after := stateAt(t, p)
	if after.size != before.size || after.ino != before.ino || after.mtime != before.mtime {
		t.Fatalf("rewrite changed more than the content and change time: %+v -> %+v", before, after)
	}
}

func TestVerifyTrustsAnUnchangedStampedFile(t *testing.T) {
	s := newStore(t)
	d, n := put(t, s, "a large product, in spirit")
	for range 3 {
		if err := s.Verify(context.Background(), d, n); err != nil {
			t.Fatal(err)
		}
	}
	stateAt(t, filepath.Join(s.Dir(), "sha256")) // skips where stat is not stamped
	if got := s.hashes.Load(); got != 0 {
		t.Fatalf("Verify of an unchanged stamped file hashed it %d times, want 0", got)
	}
	if err := s.VerifyContent(context.Background(), d, n); err != nil {
		t.Fatal(err)
	}
	if got := s.hashes.Load(); got != 1 {
		t.Fatalf("VerifyContent hashed %d times, want 1", got)
	}
}

// TestVerifyDetectsTamperingBehindAStamp changes a stamped file in every
// way the stamp must notice, including rewriting it with bytes of the same
// size and setting its modification time back.
func TestVerifyDetectsTamperingBehindAStamp(t *testing.T) {
	content := []byte("measurements of epoch 01")
	tests := []struct {
		name   string
		tamper func(t *testing.T, p string)
		want   error
	}{
		{name: "same size, in place, mtime set back", want: ErrCorrupt, tamper: func(t *testing.T, p string) {
			rewriteInPlace(t, p, bytes.ToUpper(content))
		}},
		{name: "same size, replaced by rename, mtime set back", want: ErrCorrupt, tamper: func(t *testing.T, p string) {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			tmp := p + ".evil"
			if err := os.WriteFile(tmp, bytes.ToUpper(content), 0o444); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(tmp, fi.ModTime(), fi.ModTime()); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, p); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "bytes prepended", want: ErrCorrupt, tamper: func(t *testing.T, p string) {
			if err := os.Chmod(p, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, append([]byte("tampered"), content...), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "removed", want: ErrMissing, tamper: func(t *testing.T, p string) {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			d, n := put(t, s, string(content))
			if err := s.Verify(context.Background(), d, n); err != nil {
				t.Fatal(err)
			}
			p, _ := s.path(d)
			tt.tamper(t, p)
			if err := s.Verify(context.Background(), d, n); !errors.Is(err, tt.want) {
				t.Fatalf("Verify after tampering = %v, want %v", err, tt.want)
			}
			// Detection does not depend on the stamp surviving either.
			if err := s.Verify(context.Background(), d, n); !errors.Is(err, tt.want) {
				t.Fatalf("second Verify after tampering = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestVerifyRehashesRecentlyChangedFiles: a file found changed (here only
// its mode, which moves the change time) is hashed, and the stamp Verify
// then writes is not trusted until the file's last change is older than
// the granularity of file times, since a write in the same tick as that
// change would leave the stamped times as they are.
func TestVerifyRehashesRecentlyChangedFiles(t *testing.T) {
	s := newStore(t)
	d, n := put(t, s, "settling")
	p, _ := s.path(d)
	before := stateAt(t, p)
	for stateAt(t, p).ctime == before.ctime {
		if err := os.Chmod(p, 0o444); err != nil {
			t.Fatal(err)
		}
	}
	verify := func(wantHashes int64) {
		t.Helper()
		if err := s.Verify(context.Background(), d, n); err != nil {
			t.Fatal(err)
		}
		if got := s.hashes.Load(); got != wantHashes {
			t.Fatalf("hashes = %d, want %d", got, wantHashes)
		}
	}
	verify(1) // the stamp of Put no longer matches
	verify(2) // the stamp just written is too young to trust
	futureClock(s)
	verify(3) // hashed, and stamped as settled
	verify(3) // trusted
}

func TestVerifyIgnoresUnusableStamps(t *testing.T) {
	other := Digest([]byte("another artifact"))
	tests := []struct {
		name  string
		stamp func(s *Store, d string, n int64) []byte
	}{
		{name: "garbage", stamp: func(*Store, string, int64) []byte { return []byte("\x00\x01 not a stamp") }},
		{name: "torn", stamp: func(s *Store, d string, _ int64) []byte {
			b, _ := os.ReadFile(s.stampLocation(d))
			return b[:len(b)-3]
		}},
		{name: "another digest's", stamp: func(s *Store, d string, _ int64) []byte {
			b, _ := os.ReadFile(s.stampLocation(d))
			return bytes.Replace(b, []byte(d), []byte(other), 1)
		}},
		{name: "older version", stamp: func(s *Store, d string, _ int64) []byte {
			b, _ := os.ReadFile(s.stampLocation(d))
			return bytes.Replace(b, []byte(stampVersion), []byte("piperun-stamp-v1"), 1)
		}},
		{name: "unknown origin", stamp: func(s *Store, d string, _ int64) []byte {
			b, _ := os.ReadFile(s.stampLocation(d))
			return bytes.Replace(b, []byte(" "+stampPut+" "), []byte(" guess "), 1)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			futureClock(s)
			d, n := put(t, s, "payload")
			stateAt(t, filepath.Join(s.Dir(), "sha256"))
			if err := os.WriteFile(s.stampLocation(d), tt.stamp(s, d, n), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := s.Verify(context.Background(), d, n); err != nil {
				t.Fatal(err)
			}
			if got := s.hashes.Load(); got != 1 {
				t.Fatalf("hashes = %d, want 1: an unusable stamp must not be trusted", got)
			}
			if err := s.Verify(context.Background(), d, n); err != nil || s.hashes.Load() != 1 {
				t.Fatalf("Verify after re-stamping = %v with %d hashes, want nil with 1", err, s.hashes.Load())
			}
		})
	}
}

func TestDeleteRemovesTheStamp(t *testing.T) {
	s := newStore(t)
	d, _ := put(t, s, "gone soon")
	if _, err := os.Stat(s.stampLocation(d)); err != nil {
		stateAt(t, filepath.Join(s.Dir(), "sha256"))
		t.Fatalf("Put left no stamp: %v", err)
	}
	if err := s.Delete(d); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.stampLocation(d)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stamp after Delete: %v", err)
	}
}
