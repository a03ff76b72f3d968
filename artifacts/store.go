package artifacts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// Sentinel errors, wrapped with the digest concerned.
var (
	// ErrMissing means no file is stored under the digest.
	ErrMissing = errors.New("artifact missing")
	// ErrCorrupt means the stored file's size or hash no longer match its
	// digest.
	ErrCorrupt = errors.New("artifact corrupt")
	// ErrInvalidDigest means the digest is not "sha256:" followed by 64
	// lower-case hex digits.
	ErrInvalidDigest = errors.New("invalid digest")
)

const prefix = "sha256:"

// Store keeps files under <dir>/sha256/<first 2 hex>/<remaining 62 hex>,
// and beside each, under <dir>/stamps/, the stat it had when last known
// whole (see Verify). It is safe for concurrent use by several goroutines
// and processes sharing the directory: files appear only by atomic rename
// and are never modified.
//
// A Store opened on a bucket (Open with an s3:// location) keeps the same
// keys as objects, with their digest and size in each object's metadata
// in place of stamps; several processes on different machines may share
// the bucket.
type Store struct {
	dir string
	// remote, when set, holds the artifacts in a bucket instead of dir.
	remote *bucketStore
	// location is the bucket's URL without credentials, for messages.
	location string
	// now is the clock stamps are taken with; replaceable in tests.
	now func() time.Time
	// hashes counts full reads by Verify, for tests and benchmarks.
	hashes atomic.Int64
}

// New opens (creating if needed) a store rooted at dir.
func New(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open artifact store %s: %w", dir, err)
	}
	if err := os.MkdirAll(filepath.Join(abs, "sha256"), 0o755); err != nil {
		return nil, fmt.Errorf("open artifact store %s: %w", dir, err)
	}
	return &Store{dir: abs, now: time.Now}, nil
}

// Dir returns the store's root directory; empty for a store in a bucket.
func (s *Store) Dir() string { return s.dir }

// Put stores the content of r and returns its digest and size. Storing
// content that is already present is idempotent. The file is durable
// (fsynced, as is its directory) when Put returns, and stamped, so that
// Verify need not read it again. In a bucket, the object appears whole
// when Put returns, with its digest and size in its metadata; see
// bucketStore for how.
func (s *Store) Put(ctx context.Context, r io.Reader) (digest string, size int64, err error) {
	if s.remote != nil {
		return s.remote.put(ctx, r)
	}
	tmp, err := os.CreateTemp(filepath.Join(s.dir, "sha256"), ".put-*")
	if err != nil {
		return "", 0, fmt.Errorf("put artifact: %w", err)
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	h := sha256.New()
	size, err = io.Copy(io.MultiWriter(tmp, h), ctxReader{ctx, r})
	if err != nil {
		return "", 0, fmt.Errorf("put artifact: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return "", 0, fmt.Errorf("put artifact: sync: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return "", 0, fmt.Errorf("put artifact: %w", err)
	}
	digest = prefix + hex.EncodeToString(h.Sum(nil))
	final, _ := s.path(digest)
	// When the content is already stored the rename still replaces it: the
	// bytes are the same, readers holding the old file are unaffected, and a
	// copy damaged on disk is repaired by storing it again.
	shard := filepath.Dir(final)
	if err = os.MkdirAll(shard, 0o755); err != nil {
		return "", 0, fmt.Errorf("put artifact %s: %w", digest, err)
	}
	if err = os.Chmod(tmpName, 0o444); err != nil {
		return "", 0, fmt.Errorf("put artifact %s: %w", digest, err)
	}
	if err = os.Rename(tmpName, final); err != nil {
		return "", 0, fmt.Errorf("put artifact %s: %w", digest, err)
	}
	// The rename is durable only once the directories holding the new entry
	// are synced; the shard may itself be new.
	if err = syncDir(shard); err != nil {
		return "", 0, fmt.Errorf("put artifact %s: %w", digest, err)
	}
	if err = syncDir(filepath.Dir(shard)); err != nil {
		return "", 0, fmt.Errorf("put artifact %s: %w", digest, err)
	}
	s.stampPut(digest, final)
	return digest, size, nil
}

// Open returns the stored content for digest. The error wraps ErrMissing if
// nothing is stored under it.
func (s *Store) Open(digest string) (io.ReadCloser, error) {
	if s.remote != nil {
		return s.remote.open(digest)
	}
	p, err := s.path(digest)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open artifact %s: %w", digest, ErrMissing)
	}
	if err != nil {
		return nil, fmt.Errorf("open artifact %s: %w", digest, err)
	}
	return f, nil
}

// Has reports whether content is stored under digest. It does not check the
// content; use Verify for that.
func (s *Store) Has(digest string) (bool, error) {
	if s.remote != nil {
		return s.remote.has(digest)
	}
	p, err := s.path(digest)
	if err != nil {
		return false, err
	}
	_, err = os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat artifact %s: %w", digest, err)
	}
	return true, nil
}

// Delete removes the file stored under digest. Deleting a digest that is not
// stored is not an error, so that a janitor can be retried.
func (s *Store) Delete(digest string) error {
	if s.remote != nil {
		return s.remote.delete(digest)
	}
	p, err := s.path(digest)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete artifact %s: %w", digest, err)
	}
	// A stamp left behind would not match a later copy's inode and change
	// time; removing it only keeps the tree tidy.
	if err := os.Remove(s.stampLocation(digest)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete stamp of artifact %s: %w", digest, err)
	}
	return nil
}

// ValidDigest checks that digest is "sha256:" followed by 64 lower-case hex
// digits. The error wraps ErrInvalidDigest.
func ValidDigest(digest string) error {
	hexPart, ok := strings.CutPrefix(digest, prefix)
	if !ok || len(hexPart) != sha256.Size*2 {
		return fmt.Errorf("%w %q: want sha256:<64 hex digits>", ErrInvalidDigest, digest)
	}
	for i := 0; i < len(hexPart); i++ {
		c := hexPart[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return fmt.Errorf("%w %q: want sha256:<64 lower-case hex digits>", ErrInvalidDigest, digest)
		}
	}
	return nil
}

// path maps a validated digest to its file; validation first means no
// digest can name a path outside the store.
func (s *Store) path(digest string) (string, error) {
	if err := ValidDigest(digest); err != nil {
		return "", err
	}
	h := digest[len(prefix):]
	return filepath.Join(s.dir, "sha256", h[:2], h[2:]), nil
}

// Digest returns the digest of content, as Put would name it.
func Digest(content []byte) string {
	sum := sha256.Sum256(content)
	return prefix + hex.EncodeToString(sum[:])
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// ctxReader stops a long copy when the context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
