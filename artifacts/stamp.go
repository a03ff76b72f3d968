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
	"strconv"
	"strings"
	"time"
)

// A stamp records what a whole artifact file looked like to stat(2): size,
// modification and change times, inode and device. Verify trusts a file
// whose stat still matches its stamp without reading it, as git trusts its
// index: any write through the file system moves the change time (which no
// system call can set back), and a replaced file has another inode. So
// Verify costs O(1) whatever the file's size, and still notices a file
// that was changed, replaced or removed.
//
// What a stamp cannot see: damage below the file system (media bit rot,
// which VerifyContent catches by hashing regardless), someone who rewrites
// the stamp as well as the file, and a write landing within the same tick
// of the file system's clock as Put's rename of the read-only file into
// place (milliseconds on Linux before 6.13's multigrain timestamps; never
// since).

// stampVersion starts every stamp line; a stamp of another version is
// ignored (the next Verify hashes the file and writes a current one).
const stampVersion = "piperun-stamp-v2"

// Stamp origins.
const (
	// stampPut: Put hashed the content as it wrote it and renamed the
	// read-only file into place; the state is that of the file after the
	// rename.
	stampPut = "put"
	// stampHash: Verify hashed a file found in place. The file may have
	// been written by anyone shortly before, so the stamp is trusted only
	// once recorded racyWindow after the file's last change: a write in
	// the same clock tick as the last one would leave every time as it was
	// (git's "racy" index entries).
	stampHash = "hash"
)

// racyWindow exceeds the granularity of file times: the kernel's coarse
// clock (a few milliseconds) on Linux, 1 or 2 seconds on some file systems.
const racyWindow = 2 * time.Second

// fileState is the part of a file's stat that any change of its content
// through the file system alters.
type fileState struct {
	size     int64
	mtime    int64 // Unix ns
	ctime    int64 // Unix ns
	ino, dev uint64
}

// stamp is a recorded fileState.
type stamp struct {
	fileState
	origin   string
	recorded int64 // Unix ns, read before the state was
}

// trusted reports whether the stamp may stand for a hash of the file in
// the state it records.
func (s stamp) trusted() bool {
	switch s.origin {
	case stampPut:
		return true
	case stampHash:
		return s.recorded-max(s.mtime, s.ctime) >= int64(racyWindow)
	}
	return false
}

func (s stamp) encode(digest string) []byte {
	return fmt.Appendf(nil, "%s %s %s %d %d %d %d %d %d\n", stampVersion, digest, s.origin, s.size, s.mtime, s.ctime, s.ino, s.dev, s.recorded)
}

func decodeStamp(b []byte, digest string) (stamp, bool) {
	f := strings.Fields(string(b))
	if len(f) != 9 || f[0] != stampVersion || f[1] != digest || !strings.HasSuffix(string(b), "\n") {
		return stamp{}, false
	}
	var n [6]int64
	for i := range n {
		v, err := strconv.ParseInt(f[3+i], 10, 64)
		if err != nil {
			return stamp{}, false
		}
		n[i] = v
	}
	return stamp{
		fileState: fileState{size: n[0], mtime: n[1], ctime: n[2], ino: uint64(n[3]), dev: uint64(n[4])},
		origin:    f[2], recorded: n[5],
	}, true
}

// stampLocation is where the stamp of a validated digest's file lives: a
// tree beside sha256/, so that the content tree holds only content.
func (s *Store) stampLocation(digest string) string {
	h := digest[len(prefix):]
	return filepath.Join(s.dir, "stamps", h[:2], h[2:])
}

// readStamp returns the stamp of digest's file, if there is a usable one.
func (s *Store) readStamp(digest string) (stamp, bool) {
	b, err := os.ReadFile(s.stampLocation(digest))
	if err != nil {
		return stamp{}, false
	}
	return decodeStamp(b, digest)
}

// writeStamp records st for digest's file. Stamps are a cache: a stamp that
// cannot be written costs the next Verify a hash, nothing else, so errors
// are dropped. It is written by rename, so that a reader sees a whole stamp
// or none, and not synced, since a lost stamp is only a slower Verify.
func (s *Store) writeStamp(digest string, st stamp) {
	p := s.stampLocation(digest)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".stamp-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(st.encode(digest))
	cerr := tmp.Close()
	if werr != nil || cerr != nil || os.Rename(tmp.Name(), p) != nil {
		os.Remove(tmp.Name())
	}
}

// stampPut records the state of the file Put just renamed to p.
func (s *Store) stampPut(digest, p string) {
	now := s.now()
	fi, err := os.Stat(p)
	if err != nil {
		return
	}
	if st, ok := stateOf(fi); ok {
		s.writeStamp(digest, stamp{fileState: st, origin: stampPut, recorded: now.UnixNano()})
	}
}

// Verify checks that the file stored under digest is whole: present, of
// the given size (a negative size skips that check), and with content that
// hashes to digest. A file whose stat matches its stamp (recorded when the
// content was written or last hashed) is not read again, which makes
// Verify O(1) in the file's size; any other file is hashed in full, and
// stamped when whole. It returns an error wrapping ErrMissing or ErrCorrupt
// when the file is not whole.
func (s *Store) Verify(ctx context.Context, digest string, size int64) error {
	return s.verify(ctx, digest, size, false)
}

// VerifyContent is Verify that always reads and hashes the whole file,
// stamp or not: for a scrub that also catches damage the file system does
// not see.
func (s *Store) VerifyContent(ctx context.Context, digest string, size int64) error {
	return s.verify(ctx, digest, size, true)
}

func (s *Store) verify(ctx context.Context, digest string, size int64, full bool) error {
	if s.remote != nil {
		return s.remote.verify(ctx, digest, size, full)
	}
	p, err := s.path(digest)
	if err != nil {
		return err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("verify artifact %s: %w", digest, ErrMissing)
	}
	if err != nil {
		return fmt.Errorf("verify artifact %s: %w", digest, err)
	}
	defer f.Close()
	// The clock is read before the file's state: a write after this moment
	// gets a change time no earlier than it (to the clock's tick).
	now := s.now()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("verify artifact %s: %w", digest, err)
	}
	if size >= 0 && fi.Size() != size {
		return fmt.Errorf("verify artifact %s: size %d, want %d: %w", digest, fi.Size(), size, ErrCorrupt)
	}
	before, statOK := stateOf(fi)
	if statOK && !full {
		if st, ok := s.readStamp(digest); ok && st.trusted() && st.fileState == before {
			return nil
		}
	}
	s.hashes.Add(1)
	h := sha256.New()
	if _, err := io.Copy(h, ctxReader{ctx, f}); err != nil {
		return fmt.Errorf("verify artifact %s: %w", digest, err)
	}
	if got := prefix + hex.EncodeToString(h.Sum(nil)); got != digest {
		return fmt.Errorf("verify artifact %s: content hashes to %s: %w", digest, got, ErrCorrupt)
	}
	if !statOK {
		return nil
	}
	// Stamp only a file that did not change while it was read: the state
	// recorded must be the state whose content was hashed.
	if fi2, err := f.Stat(); err == nil {
		if after, ok := stateOf(fi2); ok && after == before {
			s.writeStamp(digest, stamp{fileState: after, origin: stampHash, recorded: now.UnixNano()})
		}
	}
	return nil
}
