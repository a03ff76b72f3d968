// Package testserver runs a real piperun server inside a test: wiring.Run
// with its workers on a fresh data directory and a free loopback port, with
// users created beforehand, stopped when the test ends. It also writes the
// VAST run configurations the end-to-end tests use.
package testserver

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/wiring"
)

// User is an account created before the server starts.
type User struct {
	Name  string
	Admin bool
}

// Server is a running piperun server.
type Server struct {
	URL       string
	DataDir   string
	ImagesDir string
	// Tokens holds the API token of each user, by name.
	Tokens map[string]string
}

// Options tunes Start.
type Options struct {
	// Poll is how often the server re-reads the log (default 20ms).
	Poll time.Duration
	// Logger receives the server's log (default: discarded).
	Logger *slog.Logger
	// NoWorkers runs the server without its workers: requested jobs stay
	// Queued.
	NoWorkers bool
	// EventsPath is the embedded event store's file (default: in the
	// server's own data directory). Servers given the same one are API
	// replicas of one service, each with read models of its own; create
	// the users through the first only.
	EventsPath string
	// SessionKeyFile is the web session key's file (default: in the
	// server's data directory). Replicas share one, as behind a load
	// balancer.
	SessionKeyFile string
}

// Start runs a server over imagesDir until the test ends.
func Start(t testing.TB, imagesDir string, users []User, opts Options) *Server {
	t.Helper()
	s := &Server{DataDir: t.TempDir(), ImagesDir: imagesDir, Tokens: map[string]string{}}
	ctx, cancel := context.WithCancel(context.Background())
	for _, u := range users {
		tok, err := wiring.AddUser(ctx, wiring.Storage{DataDir: s.DataDir, EventsPath: opts.EventsPath}, u.Name, u.Admin)
		if err != nil {
			cancel()
			t.Fatalf("add user %s: %v", u.Name, err)
		}
		s.Tokens[u.Name] = tok
	}
	if opts.Poll <= 0 {
		opts.Poll = 20 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- wiring.Run(ctx, wiring.Config{
			DataDir: s.DataDir, EventsPath: opts.EventsPath, SessionKeyFile: opts.SessionKeyFile,
			Addr: "127.0.0.1:0", ImagesDir: imagesDir, Workers: !opts.NoWorkers,
			Poll: opts.Poll, Stdout: io.Discard, Ready: ready, Logger: opts.Logger,
		})
	}()
	select {
	case addr := <-ready:
		s.URL = "http://" + addr
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
		case <-time.After(30 * time.Second):
			t.Error("server did not stop within 30s of its context ending")
		}
	})
	return s
}

// VASTConfig returns a VAST-format run configuration over the given epochs
// of the shared VAST test data ("01", "04", "-invalid", ...), with paths
// relative to the data's parent (data/epochNN.fits) and the settings of
// VAST's basic-association reference run.
func VASTConfig(runPath string, epochs ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "run:\n  path: %s\n  suppress_astropy_warnings: true\ninputs:\n", runPath)
	for _, kind := range []struct{ key, suffix string }{
		{"image", ".fits"}, {"selavy", ".selavy.components.txt"},
		{"noise", ".noiseMap.fits"}, {"background", ".meanMap.fits"},
	} {
		fmt.Fprintf(&b, "  %s:\n", kind.key)
		for _, e := range epochs {
			fmt.Fprintf(&b, "  - data/epoch%s%s\n", e, kind.suffix)
		}
	}
	b.WriteString(`source_monitoring:
  monitor: false
source_association:
  method: basic
  radius: 10.0
new_sources:
  min_sigma: 5.0
measurements:
  source_finder: selavy
  flux_fractional_error: 0.0
  condon_errors: true
  selavy_local_rms_fill_value: 0.2
  ra_uncertainty: 1
  dec_uncertainty: 1
variability:
  source_aggregate_pair_metrics_min_abs_vs: 4.3
`)
	return b.String()
}

// EmptyInputFiles writes n sets of empty input files named as
// PlaceholderInputs(n) — enough for the configuration checks, not for
// processing — and returns their directory.
func EmptyInputFiles(t testing.TB, n int) string {
	t.Helper()
	dir := t.TempDir()
	in := PlaceholderInputs(n)
	for _, list := range [][]string{in.Images, in.Selavy, in.Noise, in.Background} {
		for _, p := range list {
			if err := os.WriteFile(filepath.Join(dir, p), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// PlaceholderInputs are the inputs of n images img1..imgN.
func PlaceholderInputs(n int) domain.Inputs {
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

// VASTInputs are the inputs of the given epochs of the shared VAST data
// ("epoch01", ...), relative to its data directory.
func VASTInputs(epochs ...string) domain.Inputs {
	var in domain.Inputs
	for _, e := range epochs {
		in.Images = append(in.Images, e+".fits")
		in.Selavy = append(in.Selavy, e+".selavy.components.txt")
		in.Noise = append(in.Noise, e+".noiseMap.fits")
		in.Background = append(in.Background, e+".meanMap.fits")
	}
	return in
}
