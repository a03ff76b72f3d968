package artifacts

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gocloud.dev/blob"

	"github.com/piperun/piperun/artifacts/artifactstest"
)

// newStore opens a local store in a temporary directory.
func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newBucketStore opens a store on a bucket of an S3-compatible server
// served on 127.0.0.1, through the AWS SDK's S3 client; later moves the
// server's clock forward.
func newBucketStore(t testing.TB) (*Store, func()) {
	t.Helper()
	srv := artifactstest.NewS3(t)
	s, err := Open(context.Background(), srv.URL)
	if err != nil {
		t.Fatalf("Open(%s): %v", srv.URL, err)
	}
	t.Cleanup(func() { s.Close() })
	s.remote.spoolDir = t.TempDir()
	return s, func() { srv.Clock().Advance(2 * time.Second) }
}

// backends are the stores every behaviour of the package is checked on.
var backends = []struct {
	name string
	// open makes an empty store; later lets time pass for the store's
	// modification times.
	open func(t *testing.T) (s *Store, later func())
}{
	{name: "local", open: func(t *testing.T) (*Store, func()) { return newStore(t), func() {} }},
	{name: "s3", open: func(t *testing.T) (*Store, func()) { return newBucketStore(t) }},
}

// eachBackend runs test on an empty store of every backend.
func eachBackend(t *testing.T, test func(t *testing.T, s *Store, later func())) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			s, later := b.open(t)
			test(t, s, later)
		})
	}
}

func put(t *testing.T, s *Store, content string) (string, int64) {
	t.Helper()
	d, n, err := s.Put(context.Background(), strings.NewReader(content))
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	return d, n
}

// stored lists what the store holds, bypassing it: the files under a
// local store's directory (relative to it), or the keys of a bucket.
func stored(t *testing.T, s *Store) []string {
	t.Helper()
	var got []string
	if s.remote == nil {
		err := filepath.WalkDir(s.Dir(), func(p string, e os.DirEntry, err error) error {
			if err == nil && !e.IsDir() {
				rel, _ := filepath.Rel(s.Dir(), p)
				got = append(got, filepath.ToSlash(rel))
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	it := s.remote.bucket.List(nil)
	for {
		obj, err := it.Next(context.Background())
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, obj.Key)
	}
}

// wantStored is what stored should return for a store holding exactly
// digests: the content (and a local store's stamps).
func wantStored(s *Store, digests ...string) []string {
	var want []string
	for _, d := range digests {
		key, _ := objectKey(d)
		want = append(want, key)
		if s.remote == nil {
			want = append(want, "stamps/"+strings.TrimPrefix(key, "sha256/"))
		}
	}
	slices.Sort(want)
	return want
}

// overwrite replaces the content stored under digest behind the store's
// back. In a bucket, keepMeta keeps the object's metadata as Put wrote
// it, as damage below the object store's API would.
func overwrite(t *testing.T, s *Store, digest string, content []byte, keepMeta bool) {
	t.Helper()
	if s.remote == nil {
		p, _ := s.path(digest)
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	key, _ := objectKey(digest)
	opts := &blob.WriterOptions{ContentType: "application/octet-stream"}
	if keepMeta {
		attrs, err := s.remote.bucket.Attributes(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		opts.Metadata = attrs.Metadata
	} else {
		// S3 replaces an object's metadata with the PUT's; gofakes3 merges
		// the old into it, so remove the object first.
		if err := s.remote.bucket.Delete(context.Background(), key); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.remote.bucket.WriteAll(context.Background(), key, content, opts); err != nil {
		t.Fatal(err)
	}
}

// writeRaw writes an object of a bucket store with the given metadata.
func writeRaw(t *testing.T, s *Store, key string, content []byte, meta map[string]string) {
	t.Helper()
	opts := &blob.WriterOptions{ContentType: "application/octet-stream", Metadata: meta}
	if err := s.remote.bucket.WriteAll(context.Background(), key, content, opts); err != nil {
		t.Fatal(err)
	}
}

func TestPutOpenRoundTrip(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store, _ func()) {
		d, n := put(t, s, "hello")
		// sha256("hello")
		want := "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
		if d != want || n != 5 {
			t.Fatalf("Put = %s, %d; want %s, 5", d, n, want)
		}
		if d != Digest([]byte("hello")) {
			t.Fatalf("Digest disagrees with Put")
		}
		if got, want := stored(t, s), wantStored(s, d); !slices.Contains(got, "sha256/2c/"+want[0][len("sha256/2c/"):]) || !slices.Equal(got, want) {
			t.Fatalf("store holds %v, want %v: content at its address", got, want)
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
		if err := s.VerifyContent(context.Background(), d, n); err != nil {
			t.Fatalf("VerifyContent: %v", err)
		}
	})
}

func TestPutIsIdempotentAndLeavesNoTempFiles(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store, _ func()) {
		d1, _ := put(t, s, "same")
		d2, _ := put(t, s, "same")
		if d1 != d2 {
			t.Fatalf("digests differ: %s %s", d1, d2)
		}
		if got, want := stored(t, s), wantStored(s, d1); !slices.Equal(got, want) {
			t.Fatalf("store holds %v, want exactly %v", got, want)
		}
	})
}

func TestPutEmptyContent(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store, _ func()) {
		d, n := put(t, s, "")
		if n != 0 || d != "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
			t.Fatalf("Put(empty) = %s, %d", d, n)
		}
		if err := s.Verify(context.Background(), d, 0); err != nil {
			t.Fatal(err)
		}
		if err := s.VerifyContent(context.Background(), d, 0); err != nil {
			t.Fatal(err)
		}
	})
}

// TestPutLargeContent stores content larger than a bucket store keeps in
// memory while hashing (it spools it to a file, and uploads it in parts).
func TestPutLargeContent(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store, _ func()) {
		content := make([]byte, spoolInMemory+12345)
		rand.Read(content)
		d, n, err := s.Put(context.Background(), bytes.NewReader(content))
		if err != nil {
			t.Fatal(err)
		}
		if d != Digest(content) || n != int64(len(content)) {
			t.Fatalf("Put = %s, %d; want %s, %d", d, n, Digest(content), len(content))
		}
		rc, err := s.Open(d)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, content) {
			t.Fatalf("Open read %d bytes (%v), want the %d stored", len(got), err, len(content))
		}
		if err := s.Verify(context.Background(), d, n); err != nil {
			t.Fatal(err)
		}
		if err := s.VerifyContent(context.Background(), d, n); err != nil {
			t.Fatal(err)
		}
		if s.remote != nil {
			if left, _ := os.ReadDir(s.remote.spoolDir); len(left) != 0 {
				t.Fatalf("Put left spool files %v", left)
			}
		}
	})
}

func TestConcurrentPutsOfSameContent(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store, _ func()) {
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
		d := Digest(content)
		if err := s.VerifyContent(context.Background(), d, int64(len(content))); err != nil {
			t.Fatal(err)
		}
		if err := s.Verify(context.Background(), d, int64(len(content))); err != nil {
			t.Fatal(err)
		}
		if got, want := stored(t, s), wantStored(s, d); !slices.Equal(got, want) {
			t.Fatalf("store holds %v, want exactly %v", got, want)
		}
	})
}

func TestVerifyDetectsMissingAndCorrupt(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store, _ func()) {
		d, n := put(t, s, "payload")
		missing := Digest([]byte("never stored"))

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
				overwrite(t, s, d, []byte("PAYLOAD"), false)
			}, want: ErrCorrupt},
			{name: "removed", digest: d, size: n, damage: func(t *testing.T) {
				if err := s.Delete(d); err != nil {
					t.Fatal(err)
				}
			}, want: ErrMissing},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if tt.damage != nil {
					tt.damage(t)
				}
				for name, verify := range map[string]func(context.Context, string, int64) error{"Verify": s.Verify, "VerifyContent": s.VerifyContent} {
					err := verify(context.Background(), tt.digest, tt.size)
					if !errors.Is(err, tt.want) {
						t.Fatalf("%s = %v, want %v", name, err, tt.want)
					}
					if !strings.Contains(err.Error(), tt.digest) {
						t.Errorf("%s error %q does not name the digest", name, err)
					}
				}
			})
		}
	})
}

func TestPutRepairsCorruptCopy(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store, _ func()) {
		d, n := put(t, s, "payload")
		overwrite(t, s, d, []byte("PAYLOAD"), true)
		if err := s.VerifyContent(context.Background(), d, n); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("VerifyContent of the damaged copy = %v, want ErrCorrupt", err)
		}
		put(t, s, "payload")
		if err := s.VerifyContent(context.Background(), d, n); err != nil {
			t.Fatalf("after re-Put: %v", err)
		}
	})
}

func TestDelete(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store, _ func()) {
		d, _ := put(t, s, "gone soon")
		kept, _ := put(t, s, "kept")
		if err := s.Delete(d); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.Has(d); ok || err != nil {
			t.Fatalf("Has after Delete = %v, %v", ok, err)
		}
		if _, err := s.Open(d); !errors.Is(err, ErrMissing) {
			t.Fatalf("Open after Delete = %v, want ErrMissing", err)
		}
		if err := s.Delete(d); err != nil {
			t.Fatalf("second Delete = %v, want nil", err)
		}
		if got, want := stored(t, s), wantStored(s, kept); !slices.Equal(got, want) {
			t.Fatalf("store holds %v, want exactly %v", got, want)
		}
	})
}

func TestInvalidDigestsNeverBecomePaths(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store, _ func()) {
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
			if err := s.VerifyContent(context.Background(), d, 0); !errors.Is(err, ErrInvalidDigest) {
				t.Errorf("VerifyContent(%q) = %v", d, err)
			}
			if err := s.Delete(d); !errors.Is(err, ErrInvalidDigest) {
				t.Errorf("Delete(%q) = %v", d, err)
			}
		}
	})
}

func TestPutHonoursCancellation(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store, _ func()) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, _, err := s.Put(ctx, strings.NewReader("x")); !errors.Is(err, context.Canceled) {
			t.Fatalf("Put with cancelled ctx = %v", err)
		}
		if got := stored(t, s); len(got) != 0 {
			t.Fatalf("cancelled Put left %v", got)
		}
	})
}

// TestPutCancelledDuringUploadStoresNothing cancels a Put after its
// content was read and hashed, while it is sent: the content-addressed key
// must not come to hold part of it.
func TestPutCancelledDuringUploadStoresNothing(t *testing.T) {
	s, _ := newBucketStore(t)
	content := make([]byte, 3<<20)
	rand.Read(content)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The reader cancels the context as the spool reads its last byte;
	// the upload that follows then stops, unfinished.
	r := &cancelAtEOF{r: bytes.NewReader(content), cancel: cancel}
	if _, _, err := s.Put(ctx, r); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put = %v, want context.Canceled", err)
	}
	if !r.cancelled {
		t.Fatal("the reader never reached its end: the test proves nothing")
	}
	if got := stored(t, s); len(got) != 0 {
		t.Fatalf("cancelled upload left %v", got)
	}
}

type cancelAtEOF struct {
	r         io.Reader
	cancel    func()
	cancelled bool
}

func (c *cancelAtEOF) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err == io.EOF {
		c.cancel()
		c.cancelled = true
	}
	return n, err
}

func TestPutReportsReaderErrors(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store, _ func()) {
		boom := errors.New("boom")
		_, _, err := s.Put(context.Background(), io.MultiReader(strings.NewReader("part"), errReader{boom}))
		if !errors.Is(err, boom) {
			t.Fatalf("Put = %v, want %v", err, boom)
		}
		if got := stored(t, s); len(got) != 0 {
			t.Fatalf("failed Put left %v", got)
		}
	})
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// TestWalkAndDeleteIfUnchanged: Walk lists what is stored, with sizes;
// DeleteIfUnchanged deletes an entry as listed, but not one stored again
// since the listing.
func TestWalkAndDeleteIfUnchanged(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store, later func()) {
		ctx := context.Background()
		a, an := put(t, s, "stored again after the listing")
		b, bn := put(t, s, "unused")
		listed := map[string]Entry{}
		if err := s.Walk(ctx, func(e Entry) error { listed[e.Digest] = e; return nil }); err != nil {
			t.Fatal(err)
		}
		if len(listed) != 2 || listed[a].Info == nil || listed[b].Info == nil {
			t.Fatalf("Walk listed %v, want %s and %s", listed, a, b)
		}
		if listed[a].Info.Size() != an || listed[b].Info.Size() != bn {
			t.Fatalf("Walk sizes %d, %d; want %d, %d", listed[a].Info.Size(), listed[b].Info.Size(), an, bn)
		}
		if age := time.Since(listed[a].Info.ModTime()); age < -time.Minute || age > time.Minute {
			t.Fatalf("Walk's modification time %v is not about now", listed[a].Info.ModTime())
		}
		later()
		put(t, s, "stored again after the listing")
		if gone, err := s.DeleteIfUnchanged(listed[a]); err != nil || gone {
			t.Fatalf("DeleteIfUnchanged of content stored again = %v, %v; want false, nil", gone, err)
		}
		if gone, err := s.DeleteIfUnchanged(listed[b]); err != nil || !gone {
			t.Fatalf("DeleteIfUnchanged of an unchanged entry = %v, %v; want true, nil", gone, err)
		}
		if gone, err := s.DeleteIfUnchanged(listed[b]); err != nil || gone {
			t.Fatalf("DeleteIfUnchanged of a deleted entry = %v, %v; want false, nil", gone, err)
		}
		if err := s.Verify(ctx, a, an); err != nil {
			t.Fatalf("content stored again: %v", err)
		}
		if err := s.Verify(ctx, b, bn); !errors.Is(err, ErrMissing) {
			t.Fatalf("deleted entry: Verify = %v, want ErrMissing", err)
		}
	})
}

func TestWalkStopsAtFnErrorAndCancellation(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store, _ func()) {
		put(t, s, "one")
		put(t, s, "two")
		stop := errors.New("stop")
		calls := 0
		if err := s.Walk(context.Background(), func(Entry) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
			t.Fatalf("Walk = %v after %d calls, want %v after 1", err, calls, stop)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := s.Walk(ctx, func(Entry) error { return nil }); !errors.Is(err, context.Canceled) {
			t.Fatalf("Walk with a cancelled context = %v", err)
		}
	})
}
