package bench

import (
	"context"
	"testing"

	"github.com/piperun/piperun/pipeline/forced"
)

// BenchmarkMeasure10kOn4096 times forced extraction of 10,000 sources on a
// 4,096 × 4,096 image of 2.5″ pixels (an ASKAP image's scale: 10,000
// sources over its 8 deg² is 1,700 per deg², denser than the radio sky)
// with VAST's default settings, image generation not included:
// go test ./bench -run '^$' -bench Measure10k
func BenchmarkMeasure10kOn4096(b *testing.B) {
	dir := b.TempDir()
	opts := forced.Options{ClusterThreshold: 3, EdgeBufferScale: 1.2}
	var last ForcedResult
	for b.Loop() {
		b.StopTimer()
		// Generate once; Forced regenerates, so time Measure alone.
		r, err := Forced(context.Background(), dir, ForcedOptions{Pixels: 4096, Sources: 10000, FieldRadiusDeg: ForcedFieldRadiusDeg(4096, 2.5), Seed: 1, Options: opts})
		if err != nil {
			b.Fatal(err)
		}
		last = r
		b.ReportMetric(r.Measure.Seconds(), "measure-s")
		b.StartTimer()
	}
	b.Logf("measured %d (usable %d, %d in clusters) in %s", last.Measured, last.Usable, last.Clustered, last.Measure)
}
