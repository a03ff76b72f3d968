package pipeline

import (
	"context"
	"testing"

	"github.com/piperun/piperun/artifacts"
	"github.com/piperun/piperun/synth"
)

// BenchmarkProcess100x10000 processes a synthetic survey of 100 images of
// 10,000 sources each.
func BenchmarkProcess100x10000(b *testing.B) {
	sv, err := synth.Generate(b.TempDir(), synth.Options{Images: 100, Sources: 10000, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	job := synthJob(sv, sv.Images)
	for b.Loop() {
		store, err := artifacts.New(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Process(context.Background(), store, job, nopLog{}); err != nil {
			b.Fatal(err)
		}
	}
}

type nopLog struct{}

func (nopLog) Debugf(string, ...any) {}
func (nopLog) Infof(string, ...any)  {}
func (nopLog) Warnf(string, ...any)  {}
