package runconfig

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// CheckPaths checks every input path against the images root: it must be
// relative and stay inside the root. With mustExist it must also name an
// existing regular file, and still lie inside the root once symbolic links
// (including any in the root's own path) are resolved. Faults in the paths
// are reported in a *ValidationError naming each field (inputs.image[2])
// and path; a root that cannot be resolved is an ordinary error, since it is
// the service's fault rather than the configuration's.
//
// Parse already returns cleaned slash paths, which is what callers should
// store and open (joined to the root); CheckPaths judges that cleaned form.
// A check cannot stop a link being swapped afterwards: processing opens
// the files through pipeline/inputs, which refuses at open time what this
// refuses here.
func (c *Config) CheckPaths(imagesRoot string, mustExist bool) error {
	root, err := filepath.Abs(imagesRoot)
	if err != nil {
		return fmt.Errorf("resolve images root %s: %w", imagesRoot, err)
	}
	if mustExist {
		if root, err = filepath.EvalSymlinks(root); err != nil {
			return fmt.Errorf("resolve images root %s: %w", imagesRoot, err)
		}
		fi, err := os.Stat(root)
		if err != nil {
			return fmt.Errorf("stat images root %s: %w", imagesRoot, err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("images root %s is not a directory", imagesRoot)
		}
	}
	var ps problems
	lists := []struct {
		key   string
		paths []string
	}{
		{keyImage, c.Inputs.Images},
		{keySelavy, c.Inputs.Selavy},
		{keyNoise, c.Inputs.Noise},
		{keyBackground, c.Inputs.Background},
	}
	for _, l := range lists {
		for i, p := range l.paths {
			field := fmt.Sprintf("inputs.%s[%d]", l.key, i)
			clean, why := cleanPath(p)
			if why == "" && mustExist {
				why = checkFile(root, clean)
			}
			if why != "" {
				ps.add(field, 0, "%s", why)
			}
		}
	}
	return ps.err()
}

// checkFile returns why the cleaned relative path rel does not name a
// regular file inside root (itself free of symbolic links), or "".
func checkFile(root, rel string) string {
	full := filepath.Join(root, filepath.FromSlash(rel))
	real, err := filepath.EvalSymlinks(full)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("%q does not exist in the images root", rel)
	case err != nil:
		return fmt.Sprintf("%q cannot be resolved: %v", rel, unwrapPath(err))
	}
	if within, err := filepath.Rel(root, real); err != nil || !filepath.IsLocal(within) {
		return fmt.Sprintf("%q leads outside the images root through a symbolic link", rel)
	}
	fi, err := os.Stat(real)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("%q does not exist in the images root", rel)
	case err != nil:
		return fmt.Sprintf("%q cannot be read: %v", rel, unwrapPath(err))
	case fi.IsDir():
		return fmt.Sprintf("%q is a directory, not a file", rel)
	case !fi.Mode().IsRegular():
		return fmt.Sprintf("%q is not a regular file", rel)
	}
	return ""
}

// unwrapPath drops the absolute path a *fs.PathError carries: messages go
// to users, who should not learn where the images root lives on the server.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
