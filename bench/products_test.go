package bench

import (
	"context"
	"testing"
	"time"

	"github.com/piperun/piperun/artifacts"
	"github.com/piperun/piperun/pipeline"
)

func TestPutMeasurementsReadsBack(t *testing.T) {
	store, err := artifacts.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	epoch := time.Date(2020, 8, 3, 4, 33, 55, 0, time.UTC)
	n := measurementRowsPerWrite + 17 // more than one write
	a, err := putMeasurements(ctx, store, "measurements/epoch01.parquet", 3, 101, n, epoch, 1)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := pipeline.ReadMeasurements(ctx, store, a.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != n || rows[0].ID != 101 || rows[n-1].ID != int64(100+n) || rows[n-1].ImageID != 3 || !rows[0].Time.Equal(epoch) {
		t.Fatalf("read back %d rows, first %+v", len(rows), rows[0])
	}
	again, err := putMeasurements(ctx, store, "measurements/epoch01.parquet", 3, 101, n, epoch, 1)
	if err != nil || again != a {
		t.Fatalf("same arguments gave %+v, %v; want %+v", again, err, a)
	}
}

func BenchmarkPutMeasurements(b *testing.B) {
	store, err := artifacts.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	const n = 200_000
	for b.Loop() {
		a, err := putMeasurements(context.Background(), store, "m.parquet", 1, 1, n, time.Now(), 1)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(a.Size)/n, "bytes/row")
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
}
