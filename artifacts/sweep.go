package artifacts

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Entry is a file of the store as Walk found it.
type Entry struct {
	// Digest names stored content; empty for the leftover of a Put that
	// never finished (Temp).
	Digest string
	// Temp is the path of such a leftover.
	Temp string
	Info fs.FileInfo
}

// Walk calls fn for every stored file and every leftover of an unfinished
// Put, in no particular order. A file that disappears meanwhile is skipped.
// In a bucket, a Put leaves nothing behind when it fails (its upload is
// aborted, or never completes), so Walk lists only stored objects.
func (s *Store) Walk(ctx context.Context, fn func(Entry) error) error {
	if s.remote != nil {
		return s.remote.walk(ctx, fn)
	}
	root := filepath.Join(s.dir, "sha256")
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return fmt.Errorf("walk artifacts: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("walk artifacts: %w", err)
		}
		rel, _ := filepath.Rel(root, p)
		if strings.HasPrefix(d.Name(), ".put-") {
			return fn(Entry{Temp: p, Info: info})
		}
		shard, rest, ok := strings.Cut(filepath.ToSlash(rel), "/")
		digest := prefix + shard + rest
		if !ok || ValidDigest(digest) != nil {
			return nil // not the store's: leave it alone
		}
		return fn(Entry{Digest: digest, Info: info})
	})
}

// DeleteIfUnchanged removes e's file if it is still the one Walk saw (same
// file, same modification time): a Put of the same content since then
// renames a new file over the path, and that one stays. It reports whether
// it removed the file. Between its check and the removal a Put may still
// slip in; a job checks its products exist before recording them, so it
// would store them again rather than record a missing one. In a bucket,
// "the same" means the same modification time, size and ETag (see
// bucketStore.deleteIfUnchanged).
func (s *Store) DeleteIfUnchanged(e Entry) (bool, error) {
	if s.remote != nil {
		return s.remote.deleteIfUnchanged(context.Background(), e)
	}
	p := e.Temp
	if e.Digest != "" {
		var err error
		if p, err = s.path(e.Digest); err != nil {
			return false, err
		}
	}
	now, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat artifact %s: %w", p, err)
	}
	if !os.SameFile(now, e.Info) || !now.ModTime().Equal(e.Info.ModTime()) {
		return false, nil
	}
	if e.Digest == "" {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("delete unfinished artifact %s: %w", p, err)
		}
		return true, nil
	}
	if err := s.Delete(e.Digest); err != nil {
		return false, err
	}
	return true, nil
}
