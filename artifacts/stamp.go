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

// A stamp records what a verified artifact file looked like to stat(2) when
// its content last hashed to its digest: size, modification and change
// times and inode. Verify trusts a file whose stat still matches its stamp
// without reading it, as git trusts its index: any write through the file
// system changes the change time (which no system call can set back), and
// a replaced file has another inode. What a stamp cannot see is damage
// below the file system (media bit rot) or someone who rewrites the stamp
// too; VerifyContent re-hashes regardless, for a scrub.

// stampVersion starts every stamp line; a stamp of another version is
// ignored (the next Verify hashes the file and writes a current one).
const stampVersion = "piperun-stamp-v1"

// racyWindow guards against file systems whose timestamps are coarser than
// the time between a stamp and a later write: a stamp taken less than this
// after the file's last change is not trusted, because a write in the same
// clock tick could leave the times as they were (git's "racy" entries).
// Linux file times follow the kernel's coarse clock (a few milliseconds);
// a second covers coarser file systems too.
const racyWindow = time.Second

// fileState is the part of a file's stat that any change of its content
// through the file system alters.
type fileState struct {
	size        int64
	mtime       int64 // Unix ns
	ctime       int64 // Unix ns
	ino, dev    uint64
	recordedNow int64 // Unix ns when the state was recorded
}

func (a fileState) sameFile(b fileState) bool {
	return a.size == b.size && a.mtime == b.mtime && a.ctime == b.ctime && a.ino == b.ino && a.dev == b.dev
}

// trusted reports whether a stamp with this state may stand for a hash:
// it was recorded clearly after the file's last change.
func (a fileState) trusted() bool {
	last := max(a.mtime, a.ctime)
	return a.recordedNow-last >= int64(racyWindow)
}

func (a fileState) encode(digest string) []byte {
	return fmt.Appendf(nil, "%s %s %d %d %d %d %d %d\n", stampVersion, digest, a.size, a.mtime, a.ctime, a.ino, a.dev, a.recordedNow)
}

func decodeStamp(b []byte, digest string) (fileState, bool) {
	f := strings.Fields(string(b))
	if len(f) != 8 || f[0] != stampVersion || f[1] != digest || !strings.HasSuffix(string(b), "\n") {
		return fileState{}, false
	}
	var n [6]int64
	for i := range n {
		v, err := strconv.ParseInt(f[2+i], 10, 64)
		if err != nil {
			return fileState{}, false
		}
		n[i] = v
	}
	return fileState{size: n[0], mtime: n[1], ctime: n[2], ino: uint64(n[3]), dev: uint64(n[4]), recordedNow: n[5]}, true
}

// stampLocation is where the stamp of a validated digest's file lives: a tree
// beside sha256/, so that the content tree holds only content.
func (s *Store) stampLocation(digest string) string {
	h := digest[len(prefix):]
	return filepath.Join(s.dir, "stamps", h[:2], h[2:])
}

// readStamp returns the recorded state of digest's file, if any.
func (s *Store) readStamp(digest string) (fileState, bool) {
	b, err := os.ReadFile(s.stampLocation(digest))
	if err != nil {
		return fileState{}, false
	}
	return decodeStamp(b, digest)
}

// writeStamp records st for digest's file. Stamps are a cache: a stamp that
// cannot be written costs the next Verify a hash, nothing else, so errors
// are dropped. It is written by rename, so that a reader sees a whole stamp
// or none, and not synced, since a lost stamp is only a slower Verify.
func (s *Store) writeStamp(digest string, st fileState) {
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

// recordStamp records the current state of the file at p as digest's.
// The caller has just written the content: the stamp is not trusted until
// racyWindow has passed, when Verify hashes once and stamps again.
func (s *Store) recordStamp(digest, p string) {
	now := s.now()
	fi, err := os.Stat(p)
	if err != nil {
		return
	}
	if st, ok := stateOf(fi); ok {
		st.recordedNow = now.UnixNano()
		s.writeStamp(digest, st)
	}
}

// Verify checks that the file stored under digest is whole: present, of
// the given size (a negative size skips that check), and with content that
// hashes to digest. A file whose stat matches the stamp recorded when its
// content was last hashed is not read again, which makes Verify O(1) in the
// file's size; any other file is hashed in full, and stamped when whole. It
// returns an error wrapping ErrMissing or ErrCorrupt when the file is not
// whole.
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
		if stamp, ok := s.readStamp(digest); ok && stamp.trusted() && stamp.sameFile(before) {
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
	fi2, err := f.Stat()
	if err != nil {
		return nil
	}
	if after, ok := stateOf(fi2); ok && after.sameFile(before) {
		after.recordedNow = now.UnixNano()
		s.writeStamp(digest, after)
	}
	return nil
}
