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

// futureClock makes the stamps a store takes trusted at once, as if the
// artifact had been written long before: Verify then takes the O(1) path
// unless the file's stat changed.
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
	futureClock(s)
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
			futureClock(s)
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

// TestVerifyDistrustsAFreshStamp tampers with a file within moments of
// storing it, on the real clock. Where file times are coarse (Linux before
// 6.13's multigrain timestamps, or coarser file systems) the write may land
// in the same clock tick as the stamp, leaving every stamped time
// unchanged: a stamp that young must not be trusted.
func TestVerifyDistrustsAFreshStamp(t *testing.T) {
	s := newStore(t)
	content := []byte("written a moment ago")
	d, n := put(t, s, string(content))
	p, _ := s.path(d)
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, bytes.ToUpper(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(context.Background(), d, n); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Verify = %v, want ErrCorrupt", err)
	}
}

func TestVerifyStampsOnceTheFileHasSettled(t *testing.T) {
	s := newStore(t)
	d, n := put(t, s, "settling")
	stateAt(t, filepath.Join(s.Dir(), "sha256"))
	verify := func(wantHashes int64) {
		t.Helper()
		if err := s.Verify(context.Background(), d, n); err != nil {
			t.Fatal(err)
		}
		if got := s.hashes.Load(); got != wantHashes {
			t.Fatalf("hashes = %d, want %d", got, wantHashes)
		}
	}
	verify(1) // the stamp of Put is too young to trust
	futureClock(s)
	verify(2) // still young: hashed, and stamped as settled
	verify(2) // trusted
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
			return bytes.Replace(b, []byte(stampVersion), []byte("piperun-stamp-v0"), 1)
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
