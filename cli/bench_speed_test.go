package cli

import (
	"regexp"
	"strings"
	"testing"
)

func TestBenchSpeedCommands(t *testing.T) {
	tests := []struct {
		args []string
		want []*regexp.Regexp
	}{
		{[]string{"bench", "projections", "--events", "3000", "--writers", "4", "--dir", t.TempDir()}, []*regexp.Regexp{
			regexp.MustCompile(`wrote \d+ events of \d+ runs`),
			regexp.MustCompile(`rebuilt the read models from \d+ events in \S+: \d+ events/s`),
		}},
		{[]string{"bench", "restore", "--sizes", "10,1e3", "--restores", "1", "--dir", t.TempDir()}, []*regexp.Regexp{
			regexp.MustCompile(`(?m)^10 +\S+ \S+ +1 +[\d.]+ +[\d.]+ +[\d.]+ +[\d.]+$`),
			regexp.MustCompile(`(?m)^1000 +\S+ \S+ +1 +[\d.]+ +[\d.]+ +[\d.]+ +[\d.]+$`),
		}},
		{[]string{"bench", "http", "--runs", "40", "--clients", "4", "--duration", "2s", "--mix", "restore=2,create=1,process=1", "--data-dir", t.TempDir()}, []*regexp.Regexp{
			regexp.MustCompile(`seeded 40 restorable runs`),
			regexp.MustCompile(`(?m)^restore +\d+ +\d+ +[\d.]+ +[\d.]+ +[\d.]+ +[\d.]+ +202:\d+`),
			regexp.MustCompile(`(?m)^create +\d+ +\d+ .* 201:\d+`),
			regexp.MustCompile(`the workers finished the \d+ accepted restores`),
		}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[:2], " "), func(t *testing.T) {
			r := piperun(t, "", tt.args...)
			if r.code != ExitOK {
				t.Fatalf("%s", r)
			}
			for _, want := range tt.want {
				if !want.MatchString(r.stdout) {
					t.Errorf("output does not match %s:\n%s", want, r.stdout)
				}
			}
		})
	}
}

func TestBenchSpeedUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "http", "--mix", "restore=1,delete=1"},
		{"bench", "http", "--server", "http://127.0.0.1:1"},
		{"bench", "http", "--images-dir", "/tmp"},
		{"bench", "http", "--clients", "0"},
		{"bench", "http", "--duration", "-1s"},
		{"bench", "restore", "--sizes", "1e3,0.5"},
		{"bench", "projections", "--events", "0"},
		{"bench", "projections", "extra"},
	} {
		r := piperun(t, "", args...)
		if r.code != ExitUsage {
			t.Errorf("%v: %s", args, r)
		}
	}
}
