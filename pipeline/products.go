package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/piperun/piperun/artifacts"
	"github.com/piperun/piperun/domain"
)

// Product file names.
const (
	ImagesProduct     = "images.parquet"
	BandsProduct      = "bands.parquet"
	SkyRegionsProduct = "skyregions.parquet"
)

// MeasurementsProduct returns the product name of an image's measurements:
// measurements/<file name without extension>.parquet.
func MeasurementsProduct(imageName string) string {
	return "measurements/" + stem(imageName) + ".parquet"
}

// ImageRow is one row of images.parquet. Columns mirror VAST's images
// table; selavy_path, epoch, frequency, bandwidth, n_sel and n_meas are
// additions. Measurement ids are contiguous per image, in image id order:
// image k's measurements are numbered after all n_meas of images 1..k-1,
// and, in add mode, after the previous run's forced measurements too
// (forced extraction numbers its measurements after all the others).
type ImageRow struct {
	ID               int64     `parquet:"id"`
	BandID           int64     `parquet:"band_id"`
	SkyRegID         int64     `parquet:"skyreg_id"`
	MeasurementsPath string    `parquet:"measurements_path"` // the product name
	Polarisation     string    `parquet:"polarisation"`
	Name             string    `parquet:"name"`
	Path             string    `parquet:"path"` // relative to the images root
	NoisePath        string    `parquet:"noise_path"`
	BackgroundPath   string    `parquet:"background_path"`
	SelavyPath       string    `parquet:"selavy_path"`
	Epoch            string    `parquet:"epoch"`
	DateTime         time.Time `parquet:"datetime,timestamp(microsecond:utc)"`
	JD               float64   `parquet:"jd"`
	Duration         float64   `parquet:"duration"` // seconds
	RA               float64   `parquet:"ra"`
	Dec              float64   `parquet:"dec"`
	FOVBMaj          float64   `parquet:"fov_bmaj"`
	FOVBMin          float64   `parquet:"fov_bmin"`
	PhysicalBMaj     float64   `parquet:"physical_bmaj"`
	PhysicalBMin     float64   `parquet:"physical_bmin"`
	RadiusPixels     float64   `parquet:"radius_pixels"`
	BeamBMaj         float64   `parquet:"beam_bmaj"`
	BeamBMin         float64   `parquet:"beam_bmin"`
	BeamBPA          float64   `parquet:"beam_bpa"`
	RMSMedian        float64   `parquet:"rms_median"` // mJy/beam, NaN if the noise map has no valid pixel
	RMSMin           float64   `parquet:"rms_min"`
	RMSMax           float64   `parquet:"rms_max"`
	Frequency        float64   `parquet:"frequency"` // MHz
	Bandwidth        float64   `parquet:"bandwidth"` // MHz
	NSel             int64     `parquet:"n_sel"`     // components in the catalogue
	NMeas            int64     `parquet:"n_meas"`    // measurements kept
}

// BandRow is one row of bands.parquet (VAST's bands table).
type BandRow struct {
	ID        int64  `parquet:"id"`
	Name      string `parquet:"name"`
	Frequency int64  `parquet:"frequency"` // MHz
	Bandwidth int64  `parquet:"bandwidth"` // MHz
}

// SkyRegionRow is one row of skyregions.parquet (VAST's skyregions table):
// the area covered by images sharing a centre and field of view.
type SkyRegionRow struct {
	ID        int64   `parquet:"id"`
	CentreRA  float64 `parquet:"centre_ra"`
	CentreDec float64 `parquet:"centre_dec"`
	WidthRA   float64 `parquet:"width_ra"`
	WidthDec  float64 `parquet:"width_dec"`
	XtrRadius float64 `parquet:"xtr_radius"`
	X         float64 `parquet:"x"`
	Y         float64 `parquet:"y"`
	Z         float64 `parquet:"z"`
}

// writerOptions make the bytes a function of the rows alone: the default
// created-by string carries the build, which would change digests between
// binaries.
func writerOptions() []parquet.WriterOption {
	return []parquet.WriterOption{
		// A bare WriterConfig sets only its non-zero fields.
		&parquet.WriterConfig{CreatedBy: "piperun"},
		// Snappy: zstd's per-page encoder state costs more than it saves here.
		parquet.Compression(&parquet.Snappy),
	}
}

// PutParquet encodes rows as a Parquet file and stores it. The same rows
// always give the same bytes, hence the same digest.
func PutParquet[T any](ctx context.Context, store *artifacts.Store, name string, rows []T) (domain.Artifact, error) {
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[T](&buf, writerOptions()...)
	if _, err := w.Write(rows); err != nil {
		return domain.Artifact{}, fmt.Errorf("encode %s: %w", name, err)
	}
	if err := w.Close(); err != nil {
		return domain.Artifact{}, fmt.Errorf("encode %s: %w", name, err)
	}
	digest, size, err := store.Put(ctx, &buf)
	if err != nil {
		return domain.Artifact{}, fmt.Errorf("store %s: %w", name, err)
	}
	return domain.Artifact{Name: name, Digest: digest, Size: size}, nil
}

// PutParquetStream stores a Parquet file of rows of T that fill writes,
// streaming it to the store as it is encoded, so that a product larger
// than memory can be written. Each Flush of the writer ends a row group;
// for the same bytes (and digest) a caller writes the same rows and flushes
// at the same rows every time. The writer is closed after fill returns.
// opts are applied after the options every product is written with.
func PutParquetStream[T any](ctx context.Context, store *artifacts.Store, name string, fill func(w *parquet.GenericWriter[T]) error, opts ...parquet.WriterOption) (domain.Artifact, error) {
	return PutStream(ctx, store, name, func(out io.Writer) error {
		w := parquet.NewGenericWriter[T](out, append(writerOptions(), opts...)...)
		if err := fill(w); err != nil {
			return err
		}
		if err := w.Close(); err != nil {
			return fmt.Errorf("encode %s: %w", name, err)
		}
		return nil
	})
}

// PutStream stores what write writes, streaming it to the store as it is
// written.
func PutStream(ctx context.Context, store *artifacts.Store, name string, write func(w io.Writer) error) (domain.Artifact, error) {
	u := StartUpload(ctx, store, name)
	return u.Finish(write(u))
}

// Upload is a product being streamed to the store: what is written to it
// is stored as it comes, and Finish ends it.
type Upload struct {
	name string
	pw   *io.PipeWriter
	done chan uploaded
}

type uploaded struct {
	digest string
	size   int64
	err    error
}

// StartUpload starts storing the product name.
func StartUpload(ctx context.Context, store *artifacts.Store, name string) *Upload {
	pr, pw := io.Pipe()
	u := &Upload{name: name, pw: pw, done: make(chan uploaded, 1)}
	go func() {
		d, n, err := store.Put(ctx, pr)
		// Unblock the writer if the store gave up first.
		pr.CloseWithError(fmt.Errorf("store %s: %w", name, errors.Join(err, io.ErrClosedPipe)))
		u.done <- uploaded{d, n, err}
	}()
	return u
}

// Write writes to the product.
func (u *Upload) Write(p []byte) (int, error) { return u.pw.Write(p) }

// Finish ends the product: with err nil it returns the stored artifact,
// otherwise the product is abandoned and err returned.
func (u *Upload) Finish(err error) (domain.Artifact, error) {
	u.pw.CloseWithError(err)
	res := <-u.done
	if err != nil {
		return domain.Artifact{}, err
	}
	if res.err != nil {
		return domain.Artifact{}, fmt.Errorf("store %s: %w", u.name, res.err)
	}
	return domain.Artifact{Name: u.name, Digest: res.digest, Size: res.size}, nil
}

// ReadParquet reads all rows of the Parquet artifact stored under digest.
func ReadParquet[T any](ctx context.Context, store *artifacts.Store, digest string) ([]T, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rc, err := store.Open(digest)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("read artifact %s: %w", digest, err)
	}
	rows, err := parquet.Read[T](bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("decode artifact %s: %w", digest, err)
	}
	for i := range rows {
		normaliseTimes(&rows[i])
	}
	return rows, nil
}

// normaliseTimes gives decoded timestamps the UTC location they were
// written with, so that rows compare equal after a round trip.
func normaliseTimes(row any) {
	switch r := row.(type) {
	case *Measurement:
		r.Time = r.Time.UTC()
	case *ImageRow:
		r.DateTime = r.DateTime.UTC()
	}
}

// ReadMeasurements reads one image's measurements product.
func ReadMeasurements(ctx context.Context, store *artifacts.Store, digest string) ([]Measurement, error) {
	return ReadParquet[Measurement](ctx, store, digest)
}

// ReadImages reads an images.parquet product.
func ReadImages(ctx context.Context, store *artifacts.Store, digest string) ([]ImageRow, error) {
	return ReadParquet[ImageRow](ctx, store, digest)
}

// FindArtifact returns the artifact of products named name.
func FindArtifact(p domain.Products, name string) (domain.Artifact, bool) {
	for _, a := range p.Artifacts {
		if a.Name == name {
			return a, true
		}
	}
	return domain.Artifact{}, false
}
