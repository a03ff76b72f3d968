package synth

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/pipeline/fits"
)

// Options control a synthetic survey. Zero fields take the defaults noted.
type Options struct {
	// Images is the number of epochs (default 4).
	Images int
	// Sources is the number of distinct sources (default 10). Each image
	// holds those that have appeared by its epoch.
	Sources int
	// Seed makes the survey reproducible; equal options give equal files.
	Seed uint64
	// Prefix names the files: <Prefix>NN.fits etc. (default "epoch").
	Prefix string
	// Start is the first DATE-OBS (default 2020-08-03T04:33:55.479Z);
	// each later image is one day later.
	Start time.Time
	// CentreRA and CentreDec (degrees) are the field centre (default 150,
	// -30).
	CentreRA, CentreDec float64
	// FieldRadiusDeg bounds source positions (default: wide enough for one
	// source per 45" square, at least 0.05°).
	FieldRadiusDeg float64
	// Pixels is NAXIS1 = NAXIS2 of the maps (default 32); the pixel scale
	// is chosen so the image covers the field.
	Pixels int
	// JitterArcsec is the per-epoch positional scatter (default 0.5).
	JitterArcsec float64
	// VariableFraction of sources change flux between epochs (default 0.1);
	// NewFraction first appear after the first epoch (default 0.1). Use a
	// negative value for none.
	VariableFraction, NewFraction float64
	// NoiseMJy is the image rms in mJy/beam (default 0.25).
	NoiseMJy float64
	// CSV also writes each catalogue in the CASDA CSV format.
	CSV bool
	// InjectSources adds each source present in an epoch to the image's
	// pixels as the restoring beam scaled to its true flux in that epoch
	// (otherwise the images hold noise only), for tests that measure
	// fluxes on the pixels.
	InjectSources bool
}

// Beam and frequency of every synthetic image, as in the VAST test data.
const (
	BeamMajArcsec = 15.0
	BeamMinArcsec = 10.0
	BeamPADeg     = 0.0
	FrequencyHz   = 888e6
	BandwidthHz   = 288e6
)

// Survey is what Generate wrote.
type Survey struct {
	// Dir is the images root; all paths below are relative to it.
	Dir     string
	Images  []ImageFiles
	Sources []Source
}

// ImageFiles are one epoch's files.
type ImageFiles struct {
	Image, Selavy, Noise, Background string
	// SelavyCSV is the CSV catalogue, "" unless Options.CSV.
	SelavyCSV string
	DateTime  time.Time
	// Components is the number of catalogue rows.
	Components int
}

// Source is the truth about one synthetic source.
type Source struct {
	// ID is the source's index; its components are named
	// component_<ID+1>a in island_<ID+1>.
	ID       int
	RA, Dec  float64
	Variable bool
	// FirstEpoch is the index of the first image the source is in.
	FirstEpoch int
	// FluxMJy is the true peak flux in each epoch (0 before FirstEpoch).
	FluxMJy []float64
}

// Inputs returns the run inputs for these images, in order.
func Inputs(images []ImageFiles) domain.Inputs {
	var in domain.Inputs
	for _, im := range images {
		in.Images = append(in.Images, im.Image)
		in.Selavy = append(in.Selavy, im.Selavy)
		in.Noise = append(in.Noise, im.Noise)
		in.Background = append(in.Background, im.Background)
	}
	return in
}

// Inputs returns the run inputs for all the survey's images.
func (s Survey) Inputs() domain.Inputs { return Inputs(s.Images) }

func (o *Options) defaults() error {
	if o.Images == 0 {
		o.Images = 4
	}
	if o.Sources == 0 {
		o.Sources = 10
	}
	if o.Images < 0 || o.Sources < 0 || o.Pixels < 0 || o.FieldRadiusDeg < 0 || o.JitterArcsec < 0 || o.NoiseMJy < 0 {
		return errors.New("synth: negative option")
	}
	if o.Images > 9999 {
		return errors.New("synth: at most 9999 images")
	}
	if o.Prefix == "" {
		o.Prefix = "epoch"
	}
	if filepath.Base(o.Prefix) != o.Prefix {
		return fmt.Errorf("synth: prefix %q must be a plain file name prefix", o.Prefix)
	}
	if o.Start.IsZero() {
		o.Start = time.Date(2020, 8, 3, 4, 33, 55, 479e6, time.UTC)
	}
	if o.CentreRA == 0 && o.CentreDec == 0 {
		o.CentreRA, o.CentreDec = 150, -30
	}
	if o.CentreDec < -80 || o.CentreDec > 80 {
		return errors.New("synth: keep the field centre within 80° of the equator")
	}
	if o.FieldRadiusDeg == 0 {
		o.FieldRadiusDeg = math.Max(0.05, 45.0/3600*math.Sqrt(float64(o.Sources)/math.Pi))
	}
	if o.Pixels == 0 {
		o.Pixels = 32
	}
	if o.JitterArcsec == 0 {
		o.JitterArcsec = 0.5
	}
	if o.VariableFraction == 0 {
		o.VariableFraction = 0.1
	}
	if o.NewFraction == 0 {
		o.NewFraction = 0.1
	}
	if o.NoiseMJy == 0 {
		o.NoiseMJy = 0.25
	}
	return nil
}

// Generate writes a synthetic survey into dir (created if needed) and
// returns its description. Images are written in parallel; the result does
// not depend on scheduling.
func Generate(dir string, opts Options) (Survey, error) {
	if err := opts.defaults(); err != nil {
		return Survey{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Survey{}, fmt.Errorf("synth: %w", err)
	}
	sv := Survey{Dir: dir, Sources: makeSources(opts)}
	width := max(2, len(strconv.Itoa(opts.Images)))
	sv.Images = make([]ImageFiles, opts.Images)
	for e := range sv.Images {
		base := fmt.Sprintf("%s%0*d", opts.Prefix, width, e+1)
		sv.Images[e] = ImageFiles{
			Image:      base + ".fits",
			Selavy:     base + ".selavy.components.txt",
			Noise:      base + ".noiseMap.fits",
			Background: base + ".meanMap.fits",
			DateTime:   opts.Start.Add(time.Duration(e) * 24 * time.Hour),
		}
		if opts.CSV {
			sv.Images[e].SelavyCSV = base + ".selavy.components.csv"
		}
	}
	jobs := make(chan int)
	errs := make([]error, opts.Images)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), opts.Images) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range jobs {
				errs[e] = writeEpoch(dir, opts, sv.Sources, e, &sv.Images[e])
			}
		}()
	}
	for e := range opts.Images {
		jobs <- e
	}
	close(jobs)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return Survey{}, err
	}
	return sv, nil
}

// makeSources draws the truth from its own random stream, so that it does
// not depend on how many epochs are written.
func makeSources(o Options) []Source {
	rng := rand.New(rand.NewPCG(o.Seed, 0x5eed))
	out := make([]Source, o.Sources)
	cosDec := math.Cos(o.CentreDec * math.Pi / 180)
	for i := range out {
		// Uniform in a disc of the field radius.
		r := o.FieldRadiusDeg * math.Sqrt(rng.Float64())
		phi := 2 * math.Pi * rng.Float64()
		s := Source{
			ID:  i,
			RA:  normRA(o.CentreRA + r*math.Cos(phi)/cosDec),
			Dec: o.CentreDec + r*math.Sin(phi),
		}
		s.Variable = rng.Float64() < o.VariableFraction
		if o.Images > 1 && rng.Float64() < o.NewFraction {
			s.FirstEpoch = 1 + rng.IntN(o.Images-1)
		}
		// Bright enough to be detected: 20 to 2000 sigma.
		base := o.NoiseMJy * 20 * math.Pow(100, rng.Float64())
		s.FluxMJy = make([]float64, o.Images)
		for e := s.FirstEpoch; e < o.Images; e++ {
			f := base
			if s.Variable {
				f = base * math.Exp(0.7*rng.NormFloat64())
			}
			s.FluxMJy[e] = f
		}
		out[i] = s
	}
	return out
}

func writeEpoch(dir string, o Options, sources []Source, e int, files *ImageFiles) error {
	rng := rand.New(rand.NewPCG(o.Seed, uint64(e)+1))
	pixelDeg := 2 * o.FieldRadiusDeg * 1.05 / float64(o.Pixels)
	header := func(extra ...fits.Card) ([]byte, error) {
		cards := []fits.Card{
			{Key: "SIMPLE", Value: true}, {Key: "BITPIX", Value: -32}, {Key: "NAXIS", Value: 4},
			{Key: "NAXIS1", Value: o.Pixels}, {Key: "NAXIS2", Value: o.Pixels}, {Key: "NAXIS3", Value: 1}, {Key: "NAXIS4", Value: 1},
			{Key: "BMAJ", Value: BeamMajArcsec / 3600}, {Key: "BMIN", Value: BeamMinArcsec / 3600}, {Key: "BPA", Value: BeamPADeg},
			{Key: "BUNIT", Value: "Jy/beam"},
			{Key: "CTYPE1", Value: "RA---SIN"}, {Key: "CRVAL1", Value: o.CentreRA}, {Key: "CDELT1", Value: -pixelDeg}, {Key: "CRPIX1", Value: float64(o.Pixels/2 + 1)}, {Key: "CUNIT1", Value: "deg"},
			{Key: "CTYPE2", Value: "DEC--SIN"}, {Key: "CRVAL2", Value: o.CentreDec}, {Key: "CDELT2", Value: pixelDeg}, {Key: "CRPIX2", Value: float64(o.Pixels/2 + 1)}, {Key: "CUNIT2", Value: "deg"},
			{Key: "CTYPE3", Value: "FREQ"}, {Key: "CRVAL3", Value: FrequencyHz}, {Key: "CDELT3", Value: BandwidthHz}, {Key: "CRPIX3", Value: 1.0}, {Key: "CUNIT3", Value: "Hz"},
			{Key: "CTYPE4", Value: "STOKES"}, {Key: "CRVAL4", Value: 1.0}, {Key: "CDELT4", Value: 1.0}, {Key: "CRPIX4", Value: 1.0},
			{Key: "DATE-OBS", Value: files.DateTime.Format("2006-01-02T15:04:05.000")}, {Key: "TIMESYS", Value: "UTC"},
			{Key: "TELESCOP", Value: "SYNTH"},
		}
		return fits.EncodeHeader(append(cards, extra...))
	}
	maps := []struct {
		name  string
		pixel func() float32
	}{
		{files.Image, func() float32 { return float32(rng.NormFloat64() * o.NoiseMJy / 1e3) }},
		{files.Noise, func() float32 { return float32(o.NoiseMJy / 1e3 * (1 + 0.1*rng.NormFloat64())) }},
		{files.Background, func() float32 { return float32(o.NoiseMJy / 1e3 * 0.1 * rng.NormFloat64()) }},
	}
	for k, m := range maps {
		h, err := header()
		if err != nil {
			return fmt.Errorf("synth: %s: %w", m.name, err)
		}
		n := o.Pixels * o.Pixels
		pix := make([]float32, n)
		for i := range pix {
			pix[i] = m.pixel()
		}
		if k == 0 && o.InjectSources {
			if err := inject(pix, h, o, sources, e); err != nil {
				return fmt.Errorf("synth: %s: %w", m.name, err)
			}
		}
		data := make([]byte, 0, len(h)+n*4+fits.BlockSize)
		data = append(data, h...)
		for _, v := range pix {
			data = binary.BigEndian.AppendUint32(data, math.Float32bits(v))
		}
		for len(data)%fits.BlockSize != 0 {
			data = append(data, 0)
		}
		if err := os.WriteFile(filepath.Join(dir, m.name), data, 0o644); err != nil {
			return fmt.Errorf("synth: %w", err)
		}
	}
	comps := components(o, sources, e, rng)
	files.Components = len(comps)
	if err := os.WriteFile(filepath.Join(dir, files.Selavy), textCatalogue(comps), 0o644); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	if files.SelavyCSV != "" {
		if err := os.WriteFile(filepath.Join(dir, files.SelavyCSV), csvCatalogue(comps), 0o644); err != nil {
			return fmt.Errorf("synth: %w", err)
		}
	}
	return nil
}

// inject adds the sources present in epoch e to the image pixels as
// Gaussians of the restoring beam with their true peak flux, over a box of
// five beam major axes.
func inject(pix []float32, header []byte, o Options, sources []Source, e int) error {
	h, err := fits.ReadHeader(bytes.NewReader(header))
	if err != nil {
		return err
	}
	w, err := fits.NewWCS(h)
	if err != nil {
		return err
	}
	_, scale := w.PixelScales()
	sigma := 1 / (2 * math.Sqrt(2*math.Ln2)) / (scale * 3600)
	sMaj, sMin := BeamMajArcsec*sigma, BeamMinArcsec*sigma
	// The major axis runs north-south (BPA 0): along y.
	half := int(math.Ceil(2.5 * BeamMajArcsec / (scale * 3600)))
	for _, s := range sources {
		if s.FluxMJy[e] == 0 {
			continue
		}
		p1, p2, err := w.WorldToPixel(s.RA, s.Dec)
		if err != nil {
			continue
		}
		x0, y0 := p1-1, p2-1
		cx, cy := int(math.Round(x0)), int(math.Round(y0))
		for y := max(cy-half, 0); y <= min(cy+half, o.Pixels-1); y++ {
			for x := max(cx-half, 0); x <= min(cx+half, o.Pixels-1); x++ {
				dx, dy := (float64(x)-x0)/sMin, (float64(y)-y0)/sMaj
				pix[y*o.Pixels+x] += float32(s.FluxMJy[e] / 1e3 * math.Exp(-0.5*(dx*dx+dy*dy)))
			}
		}
	}
	return nil
}

// component is one catalogue row.
type component struct {
	island, id                     int
	ra, dec                        float64
	raErr, decErr                  float64
	peak, peakErr, intg, intErr    float64
	maj, min, pa                   float64
	majErr, minErr, paErr          float64
	majDec, minDec, paDec          float64
	chi2, rmsFit, rms, spectralIdx float64
}

func components(o Options, sources []Source, e int, rng *rand.Rand) []component {
	var out []component
	cosDec := math.Cos(o.CentreDec * math.Pi / 180)
	for _, s := range sources {
		if e < s.FirstEpoch {
			continue
		}
		rms := o.NoiseMJy * (1 + 0.05*rng.NormFloat64())
		peak := s.FluxMJy[e] + rms*rng.NormFloat64()
		c := component{
			island: s.ID + 1, id: s.ID + 1,
			ra:    normRA(s.RA + o.JitterArcsec/3600*rng.NormFloat64()/cosDec),
			dec:   s.Dec + o.JitterArcsec/3600*rng.NormFloat64(),
			raErr: 0.05 + 0.1*rng.Float64(), decErr: 0.05 + 0.1*rng.Float64(),
			peak: peak, peakErr: rms,
			maj: BeamMajArcsec * (1 + 0.02*rng.Float64()), min: BeamMinArcsec * (1 + 0.02*rng.Float64()),
			pa:     math.Mod(BeamPADeg+180+5*rng.NormFloat64(), 180),
			majErr: 0.1, minErr: 0.1, paErr: 1,
			majDec: 1 + rng.Float64(), minDec: rng.Float64(), paDec: 180 * rng.Float64(),
			chi2: 50 + 50*rng.Float64(), rmsFit: 500 * rng.Float64(), rms: rms,
			spectralIdx: -99,
		}
		c.intg = peak * c.maj * c.min / (BeamMajArcsec * BeamMinArcsec)
		c.intErr = 2 * rms
		out = append(out, c)
	}
	return out
}

func normRA(ra float64) float64 {
	ra = math.Mod(ra, 360)
	if ra < 0 {
		ra += 360
	}
	return ra
}
