// A job's input images: pairing the inputs, reusing previous products, reading and measuring the files, ordering them.

package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/piperun/piperun/artifacts"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/pipeline/fits"
	"github.com/piperun/piperun/pipeline/inputs"
	"github.com/piperun/piperun/pipeline/selavy"
)

// image is an input image while it is being processed.
type image struct {
	row                                  ImageRow
	imagePath, selavyPath, noise, backgr string // relative paths
	reused                               *domain.Artifact
}

// inputImages checks the job's input lists and pairs them up.
func inputImages(job Job) ([]*image, error) {
	in := job.Config.Inputs
	n := len(in.Images)
	// Background maps are optional: only forced extraction reads them.
	noBackground := len(in.Background) == 0
	if len(in.Selavy) != n || len(in.Noise) != n || len(in.Background) != n && !noBackground || in.Epochs != nil && len(in.Epochs) != n {
		return nil, fmt.Errorf("%w: %d images, %d selavy, %d noise, %d background and %d epoch entries",
			ErrInvalidJob, n, len(in.Selavy), len(in.Noise), len(in.Background), len(in.Epochs))
	}
	if !filepath.IsAbs(job.ImagesRoot) {
		return nil, fmt.Errorf("%w: images root %q is not absolute", ErrInvalidJob, job.ImagesRoot)
	}
	names := map[string]string{}
	var out []*image
	for i := range n {
		im := &image{imagePath: in.Images[i], selavyPath: in.Selavy[i], noise: in.Noise[i]}
		if !noBackground {
			im.backgr = in.Background[i]
		}
		for _, p := range []string{im.imagePath, im.selavyPath, im.noise, im.backgr} {
			if p == "" && noBackground {
				continue
			}
			if !filepath.IsLocal(filepath.FromSlash(p)) {
				return nil, fmt.Errorf("%w: input path %q is not inside the images root", ErrInvalidJob, p)
			}
		}
		name := path.Base(im.imagePath)
		// Image names are unique in VAST, and name the measurement products.
		if other, dup := names[stem(name)]; dup {
			return nil, fmt.Errorf("%w: images %s and %s have the same name", ErrInvalidJob, other, im.imagePath)
		}
		names[stem(name)] = im.imagePath
		im.row = ImageRow{
			Name: name, Path: im.imagePath, NoisePath: im.noise, BackgroundPath: im.backgr, SelavyPath: im.selavyPath,
			MeasurementsPath: MeasurementsProduct(name), Polarisation: "I",
		}
		if in.Epochs != nil {
			im.row.Epoch = in.Epochs[i]
		}
		out = append(out, im)
	}
	return out, nil
}

// previousImages reads the previous run's images and checks that the job
// only adds images.
func previousImages(ctx context.Context, store *artifacts.Store, job Job, imgs []*image) (map[string]ImageRow, error) {
	if job.Previous == nil {
		return nil, fmt.Errorf("%w: add mode needs the previous products", ErrInvalidJob)
	}
	a, ok := FindArtifact(*job.Previous, ImagesProduct)
	if !ok {
		return nil, fmt.Errorf("%w: previous products have no %s", ErrInvalidJob, ImagesProduct)
	}
	if err := store.Verify(ctx, a.Digest, a.Size); err != nil {
		return nil, fmt.Errorf("previous %s: %w", ImagesProduct, err)
	}
	rows, err := ReadImages(ctx, store, a.Digest)
	if err != nil {
		return nil, fmt.Errorf("previous %s: %w", ImagesProduct, err)
	}
	byPath := map[string]*image{}
	for _, im := range imgs {
		byPath[im.imagePath] = im
	}
	prev := make(map[string]ImageRow, len(rows))
	for _, r := range rows {
		im, ok := byPath[r.Path]
		if !ok {
			return nil, fmt.Errorf("%w: add mode cannot remove image %s", ErrInvalidJob, r.Path)
		}
		if im.selavyPath != r.SelavyPath || im.noise != r.NoisePath || im.backgr != r.BackgroundPath {
			return nil, fmt.Errorf("%w: add mode cannot change the selavy, noise or background file of image %s", ErrInvalidJob, r.Path)
		}
		m, ok := FindArtifact(*job.Previous, r.MeasurementsPath)
		if !ok {
			return nil, fmt.Errorf("%w: previous products have no %s for image %s", ErrInvalidJob, r.MeasurementsPath, r.Path)
		}
		if has, err := store.Has(m.Digest); err != nil || !has {
			return nil, fmt.Errorf("previous %s of image %s: %w", m.Name, r.Path, errors.Join(err, artifacts.ErrMissing))
		}
		// The epoch label is a property of the configuration, which may
		// have been rewritten.
		r.Epoch = im.row.Epoch
		prev[r.Path] = r
	}
	return prev, nil
}

// readImageFiles reads an image's header and checks its noise and
// background maps, filling im.row.
func readImageFiles(ctx context.Context, root *inputs.Root, im *image, quietHeader bool, log Logger) error {
	h, err := readHeader(root, im.imagePath)
	if err != nil {
		return err
	}
	info, err := fits.ImageInfoFromHeader(h)
	if err != nil {
		return fmt.Errorf("read image %s: %w", im.imagePath, err)
	}
	r := &im.row
	// Products keep microseconds; truncating here makes a full run and an
	// add-mode run (which reads times back from images.parquet) agree.
	r.DateTime = info.DateTime.Truncate(time.Microsecond)
	r.JD = fits.JulianDate(info.DateTime)
	r.Duration = info.DurationSec
	r.RA, r.Dec = info.RADeg, info.DecDeg
	r.FOVBMaj, r.FOVBMin = info.FOVBMajDeg, info.FOVBMinDeg
	r.PhysicalBMaj, r.PhysicalBMin = info.PhysicalBMajDeg, info.PhysicalBMinDeg
	r.RadiusPixels = info.RadiusPixels
	r.BeamBMaj, r.BeamBMin, r.BeamBPA = info.BeamMajDeg, info.BeamMinDeg, info.BeamPADeg
	r.Frequency, r.Bandwidth = info.FrequencyMHz, info.BandwidthMHz
	log.Debugf("image %s: DATE-OBS %s, beam %.2f\" x %.2f\" PA %.1f°, centre RA %.6f Dec %.6f (%s), %d x %d pixels, %.1f MHz",
		im.imagePath, info.DateTime.Format("2006-01-02T15:04:05.000000"), info.BeamMajDeg*3600, info.BeamMinDeg*3600, info.BeamPADeg,
		info.RADeg, info.DecDeg, info.Projection, info.NAxis1, info.NAxis2, info.FrequencyMHz)
	if info.Projection == "linear" {
		// A header interpreted with a fallback: what astropy warns of, and
		// run.suppress_astropy_warnings quietens.
		warn := log.Warnf
		if quietHeader {
			warn = log.Debugf
		}
		warn("image %s: projection is not SIN, TAN or ARC; its centre is computed linearly from the reference pixel", im.imagePath)
	}

	st, err := noiseStats(ctx, root, im.noise)
	if err != nil {
		return err
	}
	// VAST reports noise in mJy/beam; the maps are in Jy/beam.
	r.RMSMedian, r.RMSMin, r.RMSMax = st.Median*1e3, st.Min*1e3, st.Max*1e3
	if st.N == 0 {
		log.Warnf("image %s: noise map %s has no valid pixels; its rms statistics are NaN", im.imagePath, im.noise)
	}
	log.Debugf("image %s: noise map %s: rms median %.4f, min %.4f, max %.4f mJy/beam over %d pixels", im.imagePath, im.noise, r.RMSMedian, r.RMSMin, r.RMSMax, st.N)
	if im.backgr != "" {
		if _, err := readHeader(root, im.backgr); err != nil {
			return err
		}
	}
	return nil
}

func readHeader(root *inputs.Root, rel string) (*fits.Header, error) {
	f, err := root.Open(rel)
	if err != nil {
		return nil, fmt.Errorf("read FITS header of %s: %w", rel, err)
	}
	defer f.Close()
	h, err := fits.ReadHeader(f)
	if err != nil {
		return nil, fmt.Errorf("read FITS header of %s: %w", rel, unwrapPath(err))
	}
	return h, nil
}

func noiseStats(ctx context.Context, root *inputs.Root, rel string) (fits.PixelStats, error) {
	f, err := root.Open(rel)
	if err != nil {
		return fits.PixelStats{}, fmt.Errorf("read noise map %s: %w", rel, err)
	}
	defer f.Close()
	h, err := fits.ReadHeader(f)
	if err != nil {
		return fits.PixelStats{}, fmt.Errorf("read FITS header of %s: %w", rel, unwrapPath(err))
	}
	st, err := fits.PixelStatsOf(ctx, f, h)
	if err != nil {
		return fits.PixelStats{}, fmt.Errorf("read noise map %s: %w", rel, unwrapPath(err))
	}
	return st, nil
}

// unwrapPath drops the absolute path from an *os.PathError (files opened
// through the root carry it in their read errors), so that errors name
// files as the configuration does.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// measureImage reads an image's catalogue and stores its measurements,
// numbered from the id firstID returns given their number.
func measureImage(ctx context.Context, store *artifacts.Store, root *inputs.Root, im *image, firstID func(n int) (int64, error), s Settings, log Logger) (domain.Artifact, error) {
	format, err := selavy.FormatOf(im.selavyPath)
	if err != nil {
		return domain.Artifact{}, fmt.Errorf("read selavy catalogue %s: %w", im.selavyPath, err)
	}
	f, err := root.Open(im.selavyPath)
	if err != nil {
		return domain.Artifact{}, fmt.Errorf("read selavy catalogue %s: %w", im.selavyPath, err)
	}
	cs, err := selavy.Read(f, format, im.selavyPath)
	f.Close()
	if err != nil {
		return domain.Artifact{}, err
	}
	info := fits.ImageInfo{DateTime: im.row.DateTime, BeamMajDeg: im.row.BeamBMaj, BeamMinDeg: im.row.BeamBMin}
	ms, d := buildMeasurements(cs, info, im.row.ID, 0, namePrefix(im.row.Name), s)
	first, err := firstID(len(ms))
	if err != nil {
		return domain.Artifact{}, err
	}
	for k := range ms {
		ms[k].ID += first
	}
	if d.zero > 0 {
		log.Debugf("image %s: dropped %d components with a zero size or flux", im.imagePath, d.zero)
	}
	if d.tiny > 0 {
		log.Infof("image %s: dropped %d tiny components (axes under 500 x the beam in degrees, in arcsec)", im.imagePath, d.tiny)
	}
	im.row.NSel = int64(len(cs))
	im.row.NMeas = int64(len(ms))
	a, err := PutParquet(ctx, store, im.row.MeasurementsPath, ms)
	if err != nil {
		return domain.Artifact{}, fmt.Errorf("image %s: %w", im.imagePath, err)
	}
	log.Infof("image %s (id %d): %d measurements from %d selavy components in %s", im.imagePath, im.row.ID, len(ms), len(cs), im.selavyPath)
	return a, nil
}

// sortImages orders images by observation time, then name.
func sortImages(imgs []*image) {
	slices.SortStableFunc(imgs, func(a, b *image) int { return compareRows(a.row, b.row) })
}

func compareRows(a, b ImageRow) int {
	if c := a.DateTime.Compare(b.DateTime); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

// assignBandsAndRegions gives each image its band and sky region, creating
// them in image id order the way VAST does (a band within 2% of an existing
// band's frequency is that band; a sky region is shared by images with
// exactly the same centre and radius). Because old images keep their ids,
// bands and regions of old images keep theirs in add mode.
func assignBandsAndRegions(rows []ImageRow) ([]BandRow, []SkyRegionRow) {
	order := make([]int, len(rows))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(rows[a].ID, rows[b].ID) })
	bands := []BandRow{}
	regions := []SkyRegionRow{}
	for _, i := range order {
		r := &rows[i]
		freq := int64(math.RoundToEven(r.Frequency))
		bw := int64(math.RoundToEven(r.Bandwidth))
		r.BandID = 0
		for _, b := range bands {
			if freq == b.Frequency || b.Frequency != 0 && math.Abs(float64(freq-b.Frequency))/float64(b.Frequency) < 0.02 {
				r.BandID = b.ID
				break
			}
		}
		if r.BandID == 0 {
			b := BandRow{ID: int64(len(bands) + 1), Name: fmt.Sprint(freq), Frequency: freq, Bandwidth: bw}
			bands = append(bands, b)
			r.BandID = b.ID
		}
		r.SkyRegID = 0
		for _, s := range regions {
			if s.CentreRA == r.RA && s.CentreDec == r.Dec && s.XtrRadius == r.FOVBMin {
				r.SkyRegID = s.ID
				break
			}
		}
		if r.SkyRegID == 0 {
			ra, dec := r.RA*degToRad, r.Dec*degToRad
			s := SkyRegionRow{
				ID: int64(len(regions) + 1), CentreRA: r.RA, CentreDec: r.Dec,
				WidthRA: r.PhysicalBMin, WidthDec: r.PhysicalBMaj, XtrRadius: r.FOVBMin,
				X: math.Cos(dec) * math.Cos(ra), Y: math.Cos(dec) * math.Sin(ra), Z: math.Sin(dec),
			}
			regions = append(regions, s)
			r.SkyRegID = s.ID
		}
	}
	return bands, regions
}

// stem is a file name without its extension.
func stem(name string) string {
	return strings.TrimSuffix(name, path.Ext(name))
}
