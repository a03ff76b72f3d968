package artifacts

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// Object metadata a bucket store writes with every object: the content's
// SHA-256 (hex, without the "sha256:" prefix) and its size in bytes. They
// are what Verify trusts instead of reading the object, as the local
// store trusts its stamps.
const (
	metaSHA256 = "sha256"
	metaSize   = "size"
)

// spoolInMemory is the largest content Put keeps in memory while it hashes
// it; larger content is spooled to a temporary file.
const spoolInMemory = 8 << 20

// bucketStore keeps the artifacts as objects of a bucket (S3 or any
// gocloud.dev/blob service), under the same keys as the local layout:
// sha256/<first 2 hex>/<remaining 62 hex>.
//
// Put cannot stream content straight to its key: the key is the digest of
// the content, known only once all of it was read, and S3 takes an
// object's metadata with the PUT that creates it. So Put first reads the
// content into a spool (memory for small content, a temporary local file
// otherwise), hashing it on the way, and then uploads the spool to its
// final key with the digest and size as metadata. An S3 PUT, single or
// multipart, makes the object visible only when it completes, so the
// content-addressed key never holds partial content, and a failed or
// cancelled upload leaves what was there before. Streaming to a temporary
// key and copying it to the final one instead would write every byte to
// the object store twice, leave temporary objects behind a crash for the
// sweep to find, and cap products at the 5 GB of a single server-side
// copy; the spool costs local scratch space the size of one product per
// Put in progress.
type bucketStore struct {
	bucket *blob.Bucket
	// where is the location without credentials, for messages.
	where string
	// spoolDir holds the temporary files of large Puts ("" for the
	// system's temporary directory).
	spoolDir string
	hashes   *atomic.Int64
}

// objectKey maps a validated digest to its object's key.
func objectKey(digest string) (string, error) {
	if err := ValidDigest(digest); err != nil {
		return "", err
	}
	h := digest[len(prefix):]
	return "sha256/" + h[:2] + "/" + h[2:], nil
}

func isNotFound(err error) bool { return gcerrors.Code(err) == gcerrors.NotFound }

func (b *bucketStore) put(ctx context.Context, r io.Reader) (digest string, size int64, err error) {
	sp, err := b.spool(ctx, r)
	if err != nil {
		return "", 0, fmt.Errorf("put artifact in %s: %w", b.where, err)
	}
	defer sp.close()
	digest, size = sp.digest, sp.size
	key, _ := objectKey(digest)
	body, err := sp.reader()
	if err != nil {
		return "", 0, fmt.Errorf("put artifact %s in %s: %w", digest, b.where, err)
	}
	// Cancelling the writer's context before Close aborts the upload, so
	// that a failed copy never completes an object.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := b.bucket.NewWriter(wctx, key, &blob.WriterOptions{
		ContentType: "application/octet-stream",
		Metadata: map[string]string{
			metaSHA256: digest[len(prefix):],
			metaSize:   strconv.FormatInt(size, 10),
		},
	})
	if err != nil {
		return "", 0, fmt.Errorf("put artifact %s in %s: %w", digest, b.where, err)
	}
	if _, err := io.Copy(w, ctxReader{ctx, body}); err != nil {
		cancel()
		_ = w.Close()
		return "", 0, fmt.Errorf("put artifact %s in %s: %w", digest, b.where, err)
	}
	if err := w.Close(); err != nil {
		return "", 0, fmt.Errorf("put artifact %s in %s: %w", digest, b.where, err)
	}
	return digest, size, nil
}

// spooled is content read once and hashed, ready to be read again.
type spooled struct {
	digest string
	size   int64
	mem    []byte
	file   *os.File
}

// spool reads r to its end, in memory up to spoolInMemory bytes and in a
// temporary file beyond, and hashes it.
func (b *bucketStore) spool(ctx context.Context, r io.Reader) (*spooled, error) {
	h := sha256.New()
	in := io.TeeReader(ctxReader{ctx, r}, h)
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(in, spoolInMemory+1))
	if err != nil {
		return nil, err
	}
	sp := &spooled{}
	if n <= spoolInMemory {
		sp.mem = buf.Bytes()
	} else {
		f, err := os.CreateTemp(b.spoolDir, "piperun-put-*")
		if err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
		sp.file = f
		if _, err := f.Write(buf.Bytes()); err != nil {
			sp.close()
			return nil, fmt.Errorf("spool: %w", err)
		}
		m, err := io.Copy(f, in)
		if err != nil {
			sp.close()
			return nil, err
		}
		n += m
	}
	sp.size = n
	sp.digest = prefix + hex.EncodeToString(h.Sum(nil))
	return sp, nil
}

// reader reads the spooled content from its start.
func (sp *spooled) reader() (io.Reader, error) {
	if sp.file == nil {
		return bytes.NewReader(sp.mem), nil
	}
	if _, err := sp.file.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	return sp.file, nil
}

func (sp *spooled) close() {
	if sp.file != nil {
		sp.file.Close()
		os.Remove(sp.file.Name())
	}
}

func (b *bucketStore) open(digest string) (io.ReadCloser, error) {
	key, err := objectKey(digest)
	if err != nil {
		return nil, err
	}
	rd, err := b.bucket.NewReader(context.Background(), key, nil)
	if isNotFound(err) {
		return nil, fmt.Errorf("open artifact %s: %w", digest, ErrMissing)
	}
	if err != nil {
		return nil, fmt.Errorf("open artifact %s in %s: %w", digest, b.where, err)
	}
	return rd, nil
}

func (b *bucketStore) has(digest string) (bool, error) {
	key, err := objectKey(digest)
	if err != nil {
		return false, err
	}
	ok, err := b.bucket.Exists(context.Background(), key)
	if err != nil {
		return false, fmt.Errorf("stat artifact %s in %s: %w", digest, b.where, err)
	}
	return ok, nil
}

func (b *bucketStore) delete(digest string) error {
	key, err := objectKey(digest)
	if err != nil {
		return err
	}
	if err := b.bucket.Delete(context.Background(), key); err != nil && !isNotFound(err) {
		return fmt.Errorf("delete artifact %s in %s: %w", digest, b.where, err)
	}
	return nil
}

// verify checks the object under digest. Without full, an object whose
// metadata (written by Put) names digest and whose size matches both the
// metadata and the expected size is taken as whole: one HEAD request,
// whatever the object's size. An object without that metadata (copied in
// by another tool) is read and hashed. With full, the content is always
// read and hashed.
func (b *bucketStore) verify(ctx context.Context, digest string, size int64, full bool) error {
	key, err := objectKey(digest)
	if err != nil {
		return err
	}
	if !full {
		attrs, err := b.bucket.Attributes(ctx, key)
		if isNotFound(err) {
			return fmt.Errorf("verify artifact %s: %w", digest, ErrMissing)
		}
		if err != nil {
			return fmt.Errorf("verify artifact %s in %s: %w", digest, b.where, err)
		}
		if size >= 0 && attrs.Size != size {
			return fmt.Errorf("verify artifact %s: size %d, want %d: %w", digest, attrs.Size, size, ErrCorrupt)
		}
		if claimed, ok := attrs.Metadata[metaSHA256]; ok {
			if claimed != digest[len(prefix):] {
				return fmt.Errorf("verify artifact %s: object metadata names content sha256:%s: %w", digest, claimed, ErrCorrupt)
			}
			if got := attrs.Metadata[metaSize]; got != strconv.FormatInt(attrs.Size, 10) {
				return fmt.Errorf("verify artifact %s: object of %d bytes, metadata says %q: %w", digest, attrs.Size, got, ErrCorrupt)
			}
			return nil
		}
	}
	rd, err := b.bucket.NewReader(ctx, key, nil)
	if isNotFound(err) {
		return fmt.Errorf("verify artifact %s: %w", digest, ErrMissing)
	}
	if err != nil {
		return fmt.Errorf("verify artifact %s in %s: %w", digest, b.where, err)
	}
	defer rd.Close()
	if size >= 0 && rd.Size() != size {
		return fmt.Errorf("verify artifact %s: size %d, want %d: %w", digest, rd.Size(), size, ErrCorrupt)
	}
	b.hashes.Add(1)
	h := sha256.New()
	n, err := io.Copy(h, ctxReader{ctx, rd})
	if err != nil {
		return fmt.Errorf("verify artifact %s in %s: %w", digest, b.where, err)
	}
	if size >= 0 && n != size {
		return fmt.Errorf("verify artifact %s: read %d bytes, want %d: %w", digest, n, size, ErrCorrupt)
	}
	if got := prefix + hex.EncodeToString(h.Sum(nil)); got != digest {
		return fmt.Errorf("verify artifact %s: content hashes to %s: %w", digest, got, ErrCorrupt)
	}
	return nil
}

// objectInfo is the fs.FileInfo of an object as a listing saw it.
type objectInfo struct {
	key     string
	size    int64
	modTime time.Time
	md5     []byte
}

func (o *objectInfo) Name() string {
	return o.key[strings.LastIndexByte(o.key, '/')+1:]
}
func (o *objectInfo) Size() int64        { return o.size }
func (o *objectInfo) Mode() fs.FileMode  { return 0o444 }
func (o *objectInfo) ModTime() time.Time { return o.modTime }
func (o *objectInfo) IsDir() bool        { return false }
func (o *objectInfo) Sys() any           { return nil }

func (b *bucketStore) walk(ctx context.Context, fn func(Entry) error) error {
	it := b.bucket.List(&blob.ListOptions{Prefix: "sha256/"})
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("walk artifacts in %s: %w", b.where, err)
		}
		if obj.IsDir {
			continue
		}
		shard, rest, ok := strings.Cut(strings.TrimPrefix(obj.Key, "sha256/"), "/")
		digest := prefix + shard + rest
		if !ok || ValidDigest(digest) != nil {
			continue // not the store's: leave it alone
		}
		info := &objectInfo{key: obj.Key, size: obj.Size, modTime: obj.ModTime, md5: obj.MD5}
		if err := fn(Entry{Digest: digest, Info: info}); err != nil {
			return err
		}
	}
}

// deleteIfUnchanged deletes e's object if it still has the modification
// time (to the second), size and (where the service gives one) MD5 that
// the listing saw.
// A Put of the same content since then gives the object a later
// modification time, to the second (S3's Last-Modified): the sweep only
// deletes objects older than its grace period, so a Put after its listing
// is always seconds later. S3 has no conditional delete, so a Put between
// the check and the delete may still be lost, as with the local store.
func (b *bucketStore) deleteIfUnchanged(ctx context.Context, e Entry) (bool, error) {
	info, ok := e.Info.(*objectInfo)
	if e.Digest == "" || !ok {
		return false, fmt.Errorf("delete artifact %q from %s: not an entry of this store's Walk", e.Digest, b.where)
	}
	key, err := objectKey(e.Digest)
	if err != nil {
		return false, err
	}
	attrs, err := b.bucket.Attributes(ctx, key)
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat artifact %s in %s: %w", e.Digest, b.where, err)
	}
	// A listing gives modification times to the millisecond, a HEAD to
	// the second (HTTP's Last-Modified): compare seconds.
	if !attrs.ModTime.Truncate(time.Second).Equal(info.modTime.Truncate(time.Second)) || attrs.Size != info.size ||
		(len(attrs.MD5) > 0 && len(info.md5) > 0 && !bytes.Equal(attrs.MD5, info.md5)) {
		return false, nil
	}
	if err := b.delete(e.Digest); err != nil {
		return false, err
	}
	return true, nil
}
