package client_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/runconfig"
	"github.com/piperun/piperun/server"
)

// testServer is a real piperun server running in the test's process.
type testServer struct {
	URL       string
	DataDir   string
	ImagesDir string
	// API tokens of the users created before the start.
	Admin, Alice, Bob string
}

// startServer runs server.Run with workers on a fresh data directory and
// the given images root until the test ends.
func startServer(t *testing.T, imagesDir string) *testServer {
	t.Helper()
	ts := &testServer{DataDir: t.TempDir(), ImagesDir: imagesDir}
	ctx := context.Background()
	for _, u := range []struct {
		name  string
		admin bool
		token *string
	}{{"admin", true, &ts.Admin}, {"alice", false, &ts.Alice}, {"bob", false, &ts.Bob}} {
		tok, err := server.AddUser(ctx, server.Storage{DataDir: ts.DataDir}, u.name, u.admin)
		if err != nil {
			t.Fatalf("add user %s: %v", u.name, err)
		}
		*u.token = tok
	}
	runCtx, cancel := context.WithCancel(ctx)
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- server.Run(runCtx, server.Config{
			DataDir: ts.DataDir, Addr: "127.0.0.1:0", ImagesDir: imagesDir, Workers: true,
			Poll: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Stdout: io.Discard, Ready: ready,
		})
	}()
	select {
	case addr := <-ready:
		ts.URL = "http://" + addr
	case err := <-done:
		cancel()
		t.Fatalf("server stopped before serving: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("server did not start within 30s")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server stopped with an error: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("server did not stop within 20s of its context ending")
		}
	})
	return ts
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
