package bench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/piperun/piperun/wiring"
)

// TestHTTPAgainstARunningServer drives the load generator at a server
// given by URL: runs are made through the API, then restored.
func TestHTTPAgainstARunningServer(t *testing.T) {
	ctx := context.Background()
	dataDir, imagesDir := t.TempDir(), t.TempDir()
	token, err := wiring.AddUser(ctx, wiring.Storage{DataDir: dataDir}, "root", true)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := startLocal(ctx, dataDir, imagesDir, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
	}()
	var out bytes.Buffer
	res, err := HTTP(ctx, HTTPOptions{
		Server: srv.URL, Token: token, ImagesDir: imagesDir,
		Runs: 3, Concurrency: 2, Duration: 20 * time.Second, Mix: Mix{Restore: 1},
	}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if res.Accepted[KindRestore] != 3 || res.Kinds[KindRestore].Outcomes["202"] != 3 || res.Drained == 0 {
		t.Fatalf("accepted %v, drained in %s; want the 3 prepared runs restored\n%s", res.Accepted, res.Drained, out.String())
	}
	if _, err := os.Stat(filepath.Join(imagesDir, SurveyDir, "epoch05.fits")); err != nil {
		t.Fatalf("survey not written under the server's images root: %v", err)
	}
}

func TestHTTPInProcessMix(t *testing.T) {
	var out bytes.Buffer
	profiles := t.TempDir()
	cpu, mem := filepath.Join(profiles, "cpu.prof"), filepath.Join(profiles, "mem.prof")
	res, err := HTTP(context.Background(), HTTPOptions{
		DataDir: t.TempDir(), Runs: 20, Concurrency: 4, Duration: 3 * time.Second, Requests: 40,
		Mix: Mix{Restore: 2, Create: 1, Process: 1}, CPUProfile: cpu, MemProfile: mem,
	}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	total := 0
	for _, s := range res.Kinds {
		total += s.Count
		if s.Outcomes["error"] > 0 || s.Outcomes["500"] > 0 {
			t.Errorf("failed requests: %+v", s.Outcomes)
		}
	}
	if total == 0 || total > 40 {
		t.Fatalf("%d requests sent, want 1 to 40\n%s", total, out.String())
	}
	if res.Accepted[KindRestore] == 0 || res.Accepted[KindCreate] == 0 {
		t.Fatalf("accepted %v: want restores and creates\n%s", res.Accepted, out.String())
	}
	// The profiles are written, in pprof's form (gzipped).
	for _, p := range []string{cpu, mem + ".base", mem} {
		b, err := os.ReadFile(p)
		if err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
			t.Errorf("profile %s: %d bytes, %v; want a gzipped pprof profile", filepath.Base(p), len(b), err)
		}
	}
	// The server (as serve does) warmed its command cache with every
	// seeded run before the load.
	if !strings.Contains(out.String(), "warmed its command cache with 20 runs'") {
		t.Fatalf("the server did not warm its cache with the 20 seeded runs:\n%s", out.String())
	}
}
