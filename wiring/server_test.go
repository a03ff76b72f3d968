package wiring

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/piperun/piperun/client"
	"github.com/piperun/piperun/internal/syncbuf"
)

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no data directory", Config{ImagesDir: dir}, "a data directory is required"},
		{"images directory missing", Config{DataDir: dir, ImagesDir: filepath.Join(dir, "nope")}, "images directory"},
		{"images directory is a file", Config{DataDir: dir, ImagesDir: file}, "is not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	t.Run("defaults", func(t *testing.T) {
		c := Config{DataDir: dir, ImagesDir: "."}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if !filepath.IsAbs(c.ImagesDir) || c.Poll <= 0 || c.Logger == nil || c.Stdout == nil {
			t.Fatalf("defaults not filled: %+v", c)
		}
	})
}

// start runs server.Run with cfg until stop is called; stop waits for Run
// to return and fails the test if it returned an error.
func start(t *testing.T, cfg Config) (addr string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	cfg.Ready = ready
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Poll == 0 {
		cfg.Poll = 20 * time.Millisecond
	}
	go func() { done <- Run(ctx, cfg) }()
	select {
	case addr = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("Run stopped before serving: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("Run did not serve within 30s")
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v after its context ended", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("Run did not return within 30s of its context ending")
			}
		})
	}
	t.Cleanup(stop)
	return addr, stop
}

var tokenLine = regexp.MustCompile(`(?m)^\s+(prt_\S+)$`)

// TestFirstStartCreatesTheAdministratorOnce: the first start on an empty
// data directory creates "admin" and prints its token with the URL; a later
// start on the same directory prints nothing and the token still works.
func TestFirstStartCreatesTheAdministratorOnce(t *testing.T) {
	data, images := t.TempDir(), t.TempDir()
	var out syncbuf.Buffer
	addr, stop := start(t, Config{DataDir: data, ImagesDir: images, Addr: "127.0.0.1:0", Workers: true, Stdout: &out})
	m := tokenLine.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no token printed on the first start:\n%s", out.String())
	}
	url := "http://" + addr
	if !strings.Contains(out.String(), "export PIPERUN_SERVER="+url+" PIPERUN_TOKEN="+m[1]) {
		t.Errorf("the first start does not print the export line for %s:\n%s", url, out.String())
	}
	ctx := context.Background()
	u, err := client.New(url, m[1], nil).WhoAmI(ctx)
	if err != nil || u.Name != "admin" || !u.Admin {
		t.Fatalf("whoami with the printed token: %+v, %v", u, err)
	}
	stop()

	var again syncbuf.Buffer
	addr, _ = start(t, Config{DataDir: data, ImagesDir: images, Addr: "127.0.0.1:0", Workers: true, Stdout: &again})
	if again.String() != "" {
		t.Errorf("a second start printed:\n%s", again.String())
	}
	if u, err := client.New("http://"+addr, m[1], nil).WhoAmI(ctx); err != nil || u.Name != "admin" {
		t.Fatalf("whoami after a restart: %+v, %v", u, err)
	}
}

// TestWorkerServesHealthAndMetrics: a process without an API address
// serves /healthz, /readyz and /metrics on its metrics address.
func TestWorkerServesHealthAndMetrics(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := ln.Addr().String()
	ln.Close()
	start(t, Config{DataDir: t.TempDir(), ImagesDir: t.TempDir(), Workers: true, MetricsAddr: metricsAddr, Stdout: io.Discard})
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready", "/metrics": "piperun_"} {
		resp, err := http.Get("http://" + metricsAddr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d %q, want 200 containing %q", path, resp.StatusCode, body, want)
		}
	}
}
