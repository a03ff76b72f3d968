package pipeline

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/piperun/piperun/synth"
)

// TestSuppressAstropyWarnings: run.suppress_astropy_warnings decides
// whether a warning about how an image header was interpreted (a
// projection read with the linear fallback, astropy's kind of warning in
// VAST) reaches the run's log as a warning or only as a debug line.
func TestSuppressAstropyWarnings(t *testing.T) {
	sv := generate(t, synth.Options{Images: 1, Sources: 20, Seed: 5})
	path := filepath.Join(sv.Dir, sv.Images[0].Image)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Same width: a projection piperun reads with its linear fallback.
	b2 := bytes.Replace(b, []byte("'RA---SIN'"), []byte("'RA---CAR'"), 1)
	b2 = bytes.Replace(b2, []byte("'DEC--SIN'"), []byte("'DEC--CAR'"), 1)
	if bytes.Equal(b, b2) {
		t.Fatal("the synthetic header has no RA---SIN/DEC--SIN to change")
	}
	if err := os.WriteFile(path, b2, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, suppress := range []bool{true, false} {
		job := synthJob(sv, sv.Images)
		if !suppress {
			job.Config.YAML = "run:\n  suppress_astropy_warnings: false\ninputs:\n  image: [x]\n  selavy: [x]\n  noise: [x]\n"
		}
		log := &testLog{}
		mustProcess(t, newStore(t), job, log)
		var warn, debug int
		for _, l := range log.lines {
			if strings.Contains(l, "projection is not SIN, TAN or ARC") {
				switch {
				case strings.HasPrefix(l, "WARN "):
					warn++
				case strings.HasPrefix(l, "DEBUG "):
					debug++
				}
			}
		}
		if suppress && (warn != 0 || debug != 1) || !suppress && (warn != 1 || debug != 0) {
			t.Errorf("suppress_astropy_warnings %v: %d warnings and %d debug lines about the projection", suppress, warn, debug)
		}
	}
}
