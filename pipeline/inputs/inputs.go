package inputs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// ErrRefused means an input path names something other than a regular
// file inside the images root: a path that leaves the root, a symbolic link
// leading outside it, a directory, a FIFO, a device or a socket.
var ErrRefused = errors.New("input refused")

// Root opens input files beneath one directory. It is safe for concurrent
// use; Close it when done.
type Root struct {
	root *os.Root
}

// OpenRoot opens the images root dir. Symbolic links in dir itself are
// followed: the root is the service's configuration, not a run's.
func OpenRoot(dir string) (*Root, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open images root: %w", err)
	}
	return &Root{root: r}, nil
}

// Close releases the root's directory handle; files already opened stay
// open.
func (r *Root) Close() error { return r.root.Close() }

// Open opens the regular file at rel, a slash-separated path relative to
// the root, for reading. Errors name rel (never the root's own path) and
// wrap ErrRefused when rel is not a regular file inside the root, or
// fs.ErrNotExist when there is nothing there.
//
// The file is first looked at through the root (following links only
// within it), then opened non-blocking, so that a FIFO swapped in between
// cannot hang the open, and looked at again: it must still be a regular
// file and the very file that was looked at.
func (r *Root) Open(rel string) (*os.File, error) {
	name := filepath.FromSlash(rel)
	if !filepath.IsLocal(name) {
		return nil, fmt.Errorf("open input %s: %w: the path leaves the images root", rel, ErrRefused)
	}
	before, err := r.root.Stat(name)
	if err != nil {
		return nil, r.statError(rel, name, err)
	}
	if why := notRegular(before); why != "" {
		return nil, fmt.Errorf("open input %s: %w: %s", rel, ErrRefused, why)
	}
	f, err := r.root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, r.statError(rel, name, err)
	}
	after, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open input %s: %w", rel, unwrapPath(err))
	}
	if why := notRegular(after); why != "" {
		f.Close()
		return nil, fmt.Errorf("open input %s: %w: %s", rel, ErrRefused, why)
	}
	if !os.SameFile(before, after) {
		f.Close()
		return nil, fmt.Errorf("open input %s: %w: it was replaced while being opened", rel, ErrRefused)
	}
	return f, nil
}

// statError explains why rel could not be looked at or opened.
func (r *Root) statError(rel, name string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("open input %s: does not exist in the images root: %w", rel, fs.ErrNotExist)
	}
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("open input %s: %w", rel, unwrapPath(err))
	}
	// os.Root refuses a link that leads out of the root with an error of
	// its own; Lstat, which does not follow the last link, tells whether
	// that is what the path is.
	if fi, lerr := r.root.Lstat(name); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("open input %s: %w: it is a symbolic link leading outside the images root", rel, ErrRefused)
	}
	return fmt.Errorf("open input %s: %w: %v", rel, ErrRefused, unwrapPath(err))
}

// notRegular says what fi is when it is not a regular file, or "".
func notRegular(fi fs.FileInfo) string {
	m := fi.Mode()
	switch {
	case m.IsRegular():
		return ""
	case m.IsDir():
		return "it is a directory, not a file"
	case m&fs.ModeNamedPipe != 0:
		return "it is a FIFO, not a regular file"
	case m&fs.ModeDevice != 0:
		return "it is a device, not a regular file"
	case m&fs.ModeSocket != 0:
		return "it is a socket, not a regular file"
	}
	return "it is not a regular file"
}

// OpenFile opens the regular file at path (any path, not confined to a
// root) with the same care as Root.Open: a FIFO, device or directory is
// refused without blocking. It serves tools and tests that read one file
// directly; a run's inputs go through a Root.
func OpenFile(path string) (*os.File, error) {
	r, err := OpenRoot(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, unwrapPath(err))
	}
	defer r.Close()
	f, err := r.Open(filepath.ToSlash(filepath.Base(path)))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return f, nil
}

// unwrapPath drops the path an *fs.PathError carries: os.Root names files
// by the root's absolute path, which users should not see.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
