package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/piperun/piperun/artifacts"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/pipeline"
)

// measurementRowsPerWrite bounds the rows held in memory while a large
// measurements file is written.
const measurementRowsPerWrite = 50_000

// putMeasurements stores a measurements product of n synthetic rows for
// one image, written as processing writes them (same columns, Snappy
// pages) but streamed, so that any n fits in memory. Rows are a function
// of the seed: equal arguments give equal digests.
func putMeasurements(ctx context.Context, store *artifacts.Store, name string, imageID, firstID int64, n int, epoch time.Time, seed uint64) (domain.Artifact, error) {
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(writeMeasurements(ctx, pw, imageID, firstID, n, epoch, seed))
	}()
	digest, size, err := store.Put(ctx, pr)
	pr.CloseWithError(err) // stops the writer if Put gave up
	if err != nil {
		return domain.Artifact{}, fmt.Errorf("store %s: %w", name, err)
	}
	return domain.Artifact{Name: name, Digest: digest, Size: size}, nil
}

func writeMeasurements(ctx context.Context, w io.Writer, imageID, firstID int64, n int, epoch time.Time, seed uint64) error {
	pw := parquet.NewGenericWriter[pipeline.Measurement](w, &parquet.WriterConfig{CreatedBy: "piperun"}, parquet.Compression(&parquet.Snappy))
	rng := rand.New(rand.NewPCG(seed, uint64(imageID)))
	rows := make([]pipeline.Measurement, min(n, measurementRowsPerWrite))
	for done := 0; done < n; {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch := rows[:min(len(rows), n-done)]
		for i := range batch {
			batch[i] = syntheticMeasurement(rng, firstID+int64(done+i), imageID, epoch)
		}
		if _, err := pw.Write(batch); err != nil {
			return fmt.Errorf("encode measurements: %w", err)
		}
		done += len(batch)
	}
	return pw.Close()
}

// syntheticMeasurement is a plausible selavy component of a 15"x10" beam
// image around RA 150, Dec -30.
func syntheticMeasurement(rng *rand.Rand, id, imageID int64, epoch time.Time) pipeline.Measurement {
	ra := 150 + (rng.Float64()-0.5)*10
	dec := -30 + (rng.Float64()-0.5)*10
	peak := 1 + 100*rng.ExpFloat64()
	rms := 0.2 + 0.1*rng.Float64()
	island := id/2 + 1
	return pipeline.Measurement{
		ID: id, IslandID: fmt.Sprintf("SB9602_island_%d", island), ComponentID: fmt.Sprintf("SB9602_component_%da", island),
		LocalRMS: rms, RA: ra, RAErr: 1.0 / 3600, Dec: dec, DecErr: 1.0 / 3600,
		FluxPeak: peak, FluxPeakErr: rms, FluxInt: peak * (1 + 0.2*rng.Float64()), FluxIntErr: rms * 1.2,
		BMaj: 15 + rng.Float64(), ErrBMaj: 0.1, BMin: 10 + rng.Float64(), ErrBMin: 0.1, PA: 180 * rng.Float64(), ErrPA: 1,
		PSFBMaj: 15, PSFBMin: 10, ChiSquaredFit: rng.Float64() * 100, SpectralIndex: -0.8,
		ImageID: imageID, Time: epoch, Name: fmt.Sprintf("VAST J%010.5f%+010.5f", ra, dec),
		SNR: peak / rms, Compactness: 1 + 0.1*rng.NormFloat64(), EWSysErr: 1.0 / 3600, NSSysErr: 1.0 / 3600,
		ErrorRadius: math.Sqrt2 / 3600, UncertaintyEW: 1.4 / 3600, UncertaintyNS: 1.4 / 3600,
		WeightEW: 1 / math.Pow(1.4/3600, 2), WeightNS: 1 / math.Pow(1.4/3600, 2),
		FluxIntIslRatio: 1, FluxPeakIslRatio: 1,
	}
}
