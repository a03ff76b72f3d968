package runconfig

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/piperun/piperun/domain"
)

// imagesRoot builds, in a temporary directory:
//
//	outside/secret.fits
//	outside/dir/
//	root/data/{a,b,c,d}.fits   regular files
//	root/data/dir/             a directory
//	root/data/inner -> a.fits                  (stays inside)
//	root/data/escape -> ../../outside/secret.fits
//	root/data/absolute -> <abs>/outside/secret.fits
//	root/data/outdir -> ../../outside/dir      (directory outside)
//	root/data/dangling -> missing.fits
//	root/data/loop -> loop
//
// and returns root.
func imagesRoot(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	root := filepath.Join(base, "root")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{filepath.Join(root, "data", "dir"), filepath.Join(outside, "dir")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := []string{
		filepath.Join(outside, "secret.fits"),
		filepath.Join(outside, "dir", "x.fits"),
	}
	for _, n := range []string{"a", "b", "c", "d"} {
		files = append(files, filepath.Join(root, "data", n+".fits"))
	}
	for _, f := range files {
		if err := os.WriteFile(f, []byte("SIMPLE  =                    T"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"inner":    "a.fits",
		"escape":   "../../outside/secret.fits",
		"absolute": filepath.Join(outside, "secret.fits"),
		"outdir":   "../../outside/dir",
		"dangling": "missing.fits",
		"loop":     "loop",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, "data", name)); err != nil {
			t.Skipf("cannot make symbolic links here: %v", err)
		}
	}
	return root
}

// withImage returns a config of four valid images whose image[2] is p.
func withImage(p string) *Config {
	return &Config{Inputs: domain.Inputs{
		Images: []string{"data/a.fits", "data/b.fits", p, "data/d.fits"},
		Selavy: []string{"data/a.fits", "data/b.fits", "data/c.fits", "data/d.fits"},
		Noise:  []string{"data/a.fits", "data/b.fits", "data/c.fits", "data/d.fits"},
	}}
}

func TestCheckPaths(t *testing.T) {
	root := imagesRoot(t)
	tests := []struct {
		name      string
		path      string
		mustExist bool
		wantErr   bool
		why       string // in the message, when wantErr
	}{
		{"regular file", "data/c.fits", true, false, ""},
		{"not clean but inside", "./data/x/../c.fits", true, false, ""},
		{"link inside the root", "data/inner", true, false, ""},
		{"missing file, not required to exist", "data/nothing.fits", false, false, ""},
		{"missing file", "data/nothing.fits", true, true, "does not exist"},
		{"parent", "../x", false, true, "leads outside the images root"},
		{"parent that exists", "../outside/secret.fits", true, true, "leads outside the images root"},
		{"absolute", "/etc/passwd", false, true, "not absolute"},
		{"absolute that exists", "/etc/passwd", true, true, "not absolute"},
		{"climbing back out", "a/../../x", false, true, "leads outside the images root"},
		{"deep climb", "data/dir/../../../outside/secret.fits", true, true, "leads outside the images root"},
		{"empty", "", false, true, "must not be empty"},
		{"the root", ".", false, true, "names the images root itself"},
		{"relative link escaping", "data/escape", true, true, "through a symbolic link"},
		{"absolute link escaping", "data/absolute", true, true, "through a symbolic link"},
		{"through a linked directory outside", "data/outdir/x.fits", true, true, "through a symbolic link"},
		{"linked directory, not required to exist", "data/outdir/x.fits", false, false, ""},
		{"directory", "data/dir", true, true, "is a directory"},
		{"dangling link", "data/dangling", true, true, "does not exist"},
		{"link loop", "data/loop", true, true, "cannot be resolved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := withImage(tt.path).CheckPaths(root, tt.mustExist)
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("CheckPaths: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("CheckPaths accepted it")
			}
			if got := validationFields(t, err); !slices.Equal(got, []string{"inputs.image[2]"}) {
				t.Errorf("problems with %q, want inputs.image[2]: %v", got, err)
			}
			if !strings.Contains(err.Error(), tt.why) {
				t.Errorf("error %q does not say %q", err, tt.why)
			}
			if tt.path != "" && !strings.Contains(err.Error(), filepath.ToSlash(filepath.Clean(tt.path))) && !strings.Contains(err.Error(), tt.path) {
				t.Errorf("error %q does not name the path %q", err, tt.path)
			}
			if strings.Contains(err.Error(), root) {
				t.Errorf("error %q reveals the images root", err)
			}
		})
	}
}

func TestCheckPathsNamesEveryField(t *testing.T) {
	root := imagesRoot(t)
	c := &Config{Inputs: domain.Inputs{
		Images:     []string{"data/a.fits", "data/nothing.fits"},
		Selavy:     []string{"/abs.txt", "data/b.fits"},
		Noise:      []string{"data/a.fits", "data/escape"},
		Background: []string{"../bg.fits", "data/dir"},
	}}
	err := c.CheckPaths(root, true)
	want := []string{"inputs.image[1]", "inputs.selavy[0]", "inputs.noise[1]", "inputs.background[0]", "inputs.background[1]"}
	if got := validationFields(t, err); !slices.Equal(got, want) {
		t.Errorf("problems with %q, want %q\n%v", got, want, err)
	}
}

func TestCheckPathsRoot(t *testing.T) {
	root := imagesRoot(t)
	// A root reached through a symbolic link is fine: files are judged
	// against where it really is.
	link := filepath.Join(t.TempDir(), "images")
	if err := os.Symlink(root, link); err != nil {
		t.Skipf("cannot make symbolic links here: %v", err)
	}
	if err := withImage("data/inner").CheckPaths(link, true); err != nil {
		t.Errorf("root behind a link: %v", err)
	}
	if err := withImage("data/escape").CheckPaths(link, true); err == nil {
		t.Error("root behind a link: an escaping link was accepted")
	}
	// A missing root is the service's fault, not the configuration's.
	err := withImage("data/c.fits").CheckPaths(filepath.Join(root, "missing"), true)
	var ve *ValidationError
	if err == nil || errors.As(err, &ve) {
		t.Errorf("missing root: got %v, want a plain error", err)
	}
	err = withImage("data/c.fits").CheckPaths(filepath.Join(root, "data", "a.fits"), true)
	if err == nil || errors.As(err, &ve) {
		t.Errorf("root is a file: got %v, want a plain error", err)
	}
}

// TestParseThenCheckPaths runs the usual sequence on a parsed
// configuration.
func TestParseThenCheckPaths(t *testing.T) {
	root := imagesRoot(t)
	text := `inputs:
  image: [data/a.fits, ./data/b.fits, data//c.fits, data/escape]
  selavy: [data/a.fits, data/b.fits, data/c.fits, data/d.fits]
  noise: [data/a.fits, data/b.fits, data/c.fits, data/d.fits]
`
	c := mustParse(t, text)
	want := []string{"data/a.fits", "data/b.fits", "data/c.fits", "data/escape"}
	if !slices.Equal(c.Inputs.Images, want) {
		t.Errorf("images = %q, want cleaned %q", c.Inputs.Images, want)
	}
	if err := c.CheckPaths(root, false); err != nil {
		t.Errorf("without existence: %v", err)
	}
	err := c.CheckPaths(root, true)
	if got := validationFields(t, err); !slices.Equal(got, []string{"inputs.image[3]"}) {
		t.Errorf("problems with %q, want inputs.image[3]: %v", got, err)
	}
}
