package client_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/internal/testserver"
	"github.com/piperun/piperun/runconfig"
)

// testServer is a real piperun server running in the test's process.
type testServer struct {
	URL       string
	DataDir   string
	ImagesDir string
	// API tokens of the users created before the start.
	Admin, Alice, Bob string
}

// startServer runs a real server (workers on) over imagesDir until the
// test ends, with the users admin (an administrator), alice and bob.
func startServer(t *testing.T, imagesDir string) *testServer {
	t.Helper()
	srv := testserver.Start(t, imagesDir, []testserver.User{{Name: "admin", Admin: true}, {Name: "alice"}, {Name: "bob"}}, testserver.Options{})
	return &testServer{URL: srv.URL, DataDir: srv.DataDir, ImagesDir: imagesDir,
		Admin: srv.Tokens["admin"], Alice: srv.Tokens["alice"], Bob: srv.Tokens["bob"]}
}

// syntheticImages writes n sets of empty input files (enough for the
// configuration checks, not for processing) and returns the directory.
func syntheticImages(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	in := syntheticInputs(n)
	for _, list := range [][]string{in.Images, in.Selavy, in.Noise, in.Background} {
		for _, p := range list {
			if err := os.WriteFile(filepath.Join(dir, p), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

func syntheticInputs(n int) domain.Inputs {
	var in domain.Inputs
	for i := 1; i <= n; i++ {
		base := "img" + string(rune('0'+i))
		in.Images = append(in.Images, base+".fits")
		in.Selavy = append(in.Selavy, base+".selavy.txt")
		in.Noise = append(in.Noise, base+".noise.fits")
		in.Background = append(in.Background, base+".bg.fits")
	}
	return in
}

// vastInputs are the inputs of the given epochs of the shared VAST data.
func vastInputs(epochs ...string) domain.Inputs {
	var in domain.Inputs
	for _, e := range epochs {
		in.Images = append(in.Images, e+".fits")
		in.Selavy = append(in.Selavy, e+".selavy.components.txt")
		in.Noise = append(in.Noise, e+".noiseMap.fits")
		in.Background = append(in.Background, e+".meanMap.fits")
	}
	return in
}

func config(in domain.Inputs, run string) string { return runconfig.Render(in, run) }
