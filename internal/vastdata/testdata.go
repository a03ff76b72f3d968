package vastdata

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// VASTDir returns the absolute path of the shared VAST test data directory
// (the one holding data/ and expected/). When it cannot be found the test is
// skipped, or failed if the CI environment variable is set.
func VASTDir(t testing.TB) string {
	t.Helper()
	dir, err := findVASTDir()
	if err != nil {
		missing(t, err)
	}
	return dir
}

// VASTFile returns the absolute path of a file under the VAST test data
// directory, e.g. VASTFile(t, "data", "epoch01.fits"), skipping or failing
// like VASTDir when it is missing.
func VASTFile(t testing.TB, elem ...string) string {
	t.Helper()
	p := filepath.Join(append([]string{VASTDir(t)}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		missing(t, err)
	}
	return p
}

// Find returns the VAST test data directory like VASTDir, or an error
// when it is missing, without skipping: for fuzz seeds, which are a bonus
// to the synthetic ones.
func Find() (string, error) { return findVASTDir() }

func missing(t testing.TB, err error) {
	t.Helper()
	msg := fmt.Sprintf("VAST test data not available (%v): these tests need the shared data at "+
		"<module root>/../shared/testdata/vast (data/epoch0N.* and expected/), or where %s says", err, EnvDir)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// EnvDir names the environment variable that, when set, gives the VAST
// test data directory instead of <module root>/../shared/testdata/vast:
// for a checkout (a git worktree, say) that does not sit beside shared/.
const EnvDir = "PIPERUN_VAST_TESTDATA"

// findVASTDir returns $PIPERUN_VAST_TESTDATA when it is set; otherwise it
// walks up from the working directory (a test's package directory) to the
// module root and looks beside it.
func findVASTDir() (string, error) {
	if d := os.Getenv(EnvDir); d != "" {
		abs, err := filepath.Abs(d)
		if err != nil {
			return "", fmt.Errorf("%s: %w", EnvDir, err)
		}
		return checkVASTDir(abs)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	root, err := moduleRoot(wd)
	if err != nil {
		return "", err
	}
	return checkVASTDir(filepath.Join(filepath.Dir(root), "shared", "testdata", "vast"))
}

// checkVASTDir returns dir if it holds a data directory.
func checkVASTDir(dir string) (string, error) {
	st, err := os.Stat(filepath.Join(dir, "data"))
	if err != nil {
		return "", err
	}
	if !st.IsDir() {
		return "", fmt.Errorf("%s is not a directory", filepath.Join(dir, "data"))
	}
	return dir, nil
}

func moduleRoot(dir string) (string, error) {
	for d := dir; ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", errors.New("no go.mod above " + dir)
		}
		d = parent
	}
}
