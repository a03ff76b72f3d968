package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func init() {
	// The help test of every command (cli_test.go) covers bench too.
	flagsOf["bench"] = []string{"--images", "--sources", "--jitter", "--method", "--seed", "--dir", "--pair-metrics", "--workers", "--workers-io", "--cpuprofile", "bench associate"}
}

func TestBenchAssociate(t *testing.T) {
	r := piperun(t, "", "bench", "associate", "--images", "3", "--sources", "40", "--seed", "2", "--dir", t.TempDir())
	if r.code != ExitOK {
		t.Fatalf("bench associate: %s", r)
	}
	if !strings.Contains(r.stdout, "association (basic): ") {
		t.Errorf("the default method is not basic:\n%s", r.stdout)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`survey: 3 images x 40 sources \(jitter 0\.5 arcsec\), \d+ catalogue components`),
		regexp.MustCompile(`measurements: \d+ read from the catalogues and stored in \S+ \(\d+ meas/s\)`),
		regexp.MustCompile(`association \(basic\): \d+ measurements in \S+ \(\d+ meas/s\): \d+ sources, \d+ new; peak memory \d+ MiB`),
		regexp.MustCompile(`measurement pairs: \d+ pairs of \d+ sources \(\d+ workers\), in \S+ \(measurement_pairs.parquet of association; \d+ MiB, \d+ workers, batches of 15 MB\)`),
		regexp.MustCompile(`processing: \S+ in all; peak memory \d+ MiB`),
	} {
		if !want.MatchString(r.stdout) {
			t.Errorf("output does not match %s:\n%s", want, r.stdout)
		}
	}
	profile := filepath.Join(t.TempDir(), "cpu.prof")
	r = piperun(t, "", "bench", "associate", "--images", "3", "--sources", "40", "--pair-metrics=false", "--workers", "2", "--cpuprofile", profile, "--dir", t.TempDir())
	if r.code != ExitOK || !strings.Contains(r.stdout, "measurement pairs: off\n") {
		t.Errorf("bench associate --pair-metrics=false: %s", r)
	}
	if st, err := os.Stat(profile); err != nil || st.Size() == 0 {
		t.Errorf("no CPU profile: %v", err)
	}
	if r := piperun(t, "", "bench", "sort"); r.code != ExitUsage || !strings.Contains(r.stderr, "associate") {
		t.Errorf("bench sort: %s", r)
	}
	if r := piperun(t, "", "bench", "associate", "--method", "nearest"); r.code != ExitUsage || !strings.Contains(r.stderr, "--method") {
		t.Errorf("bench associate --method nearest: %s", r)
	}
}

// TestBenchAssociateMethods runs the benchmark with the advanced and de
// Ruiter methods: the method reaches the association, which finds every
// source (40 sources, 3 images, 0.5" jitter).
func TestBenchAssociateMethods(t *testing.T) {
	for _, m := range []string{"advanced", "deruiter"} {
		r := piperun(t, "", "bench", "associate", "--images", "3", "--sources", "40", "--seed", "2", "--method", m, "--dir", t.TempDir())
		if r.code != ExitOK {
			t.Fatalf("bench associate --method %s: %s", m, r)
		}
		if !regexp.MustCompile(`association \(` + m + `\): \d+ measurements in \S+ \(\d+ meas/s\): \d+ sources`).MatchString(r.stdout) {
			t.Errorf("--method %s: output\n%s", m, r.stdout)
		}
	}
}

func init() {
	flagsOf["bench forced"] = []string{"--pixels", "--sources", "--pixel-size", "--cluster-threshold", "--allow-nan", "--seed", "--dir"}
}

func TestBenchForced(t *testing.T) {
	r := piperun(t, "", "bench", "forced", "--pixels", "300", "--sources", "30", "--pixel-size", "4", "--dir", t.TempDir())
	if r.code != ExitOK {
		t.Fatalf("bench forced: %s", r)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`image: 300 x 300 pixels of 4 arcsec, 30 sources, generated in \S+`),
		regexp.MustCompile(`forced extraction: 30 measured \(30 usable, \d+ in clusters\) in \S+ \(\d+ sources/s\)`),
	} {
		if !want.MatchString(r.stdout) {
			t.Errorf("output does not match %s:\n%s", want, r.stdout)
		}
	}
	for _, args := range [][]string{
		{"bench", "forced", "--pixels", "0"},
		{"bench", "forced", "--pixel-size", "-1"},
		{"bench", "forced", "--cluster-threshold", "-2"},
		{"bench", "forced", "extra"},
	} {
		if r := piperun(t, "", args...); r.code != ExitUsage {
			t.Errorf("%v: %s", args, r)
		}
	}
}
