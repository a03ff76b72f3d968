package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/piperun/piperun/artifacts"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/internal/vastdata"
	"github.com/piperun/piperun/pipeline/selavy"
)

// testLog records log lines.
type testLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *testLog) add(level, format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, level+" "+fmt.Sprintf(format, args...))
}
func (l *testLog) Debugf(f string, a ...any) { l.add("DEBUG", f, a...) }
func (l *testLog) Infof(f string, a ...any)  { l.add("INFO", f, a...) }
func (l *testLog) Warnf(f string, a ...any)  { l.add("WARN", f, a...) }

func (l *testLog) count(prefix string) int {
	n := 0
	for _, s := range l.lines {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

func newStore(t *testing.T) *artifacts.Store {
	t.Helper()
	s, err := artifacts.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// vastInputs lists the VAST test files of the given epochs ("01", ...),
// relative to the VAST test data directory.
func vastInputs(epochs ...string) domain.Inputs {
	var in domain.Inputs
	for _, e := range epochs {
		in.Images = append(in.Images, "data/epoch"+e+".fits")
		in.Selavy = append(in.Selavy, "data/epoch"+e+".selavy.components.txt")
		in.Noise = append(in.Noise, "data/epoch"+e+".noiseMap.fits")
		in.Background = append(in.Background, "data/epoch"+e+".meanMap.fits")
	}
	return in
}

// vastConfig is expected/basic-association/config.yaml's settings.
const vastConfig = `inputs:
  image: [data/epoch01.fits]
  selavy: [data/epoch01.selavy.components.txt]
  noise: [data/epoch01.noiseMap.fits]
  background: [data/epoch01.meanMap.fits]
source_association:
  method: basic
  radius: 10.0
measurements:
  source_finder: selavy
  flux_fractional_error: 0.0
  condon_errors: true
  selavy_local_rms_fill_value: 0.2
  ra_uncertainty: 1
  dec_uncertainty: 1
`

func processVAST(t *testing.T, store *artifacts.Store, log Logger, epochs ...string) domain.Products {
	t.Helper()
	job := Job{Run: "vast", ImagesRoot: vastdata.VASTDir(t), Config: domain.RunConfig{YAML: vastConfig, Inputs: vastInputs(epochs...)}}
	p, err := Process(context.Background(), store, job, log)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func readAll[T any](t *testing.T, path string) []T {
	t.Helper()
	rows, err := parquet.ReadFile[T](path)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func artifact(t *testing.T, p domain.Products, name string) domain.Artifact {
	t.Helper()
	a, ok := FindArtifact(p, name)
	if !ok {
		t.Fatalf("no product %s in %+v", name, p.Artifacts)
	}
	return a
}

func closeTo(a, b, rel float64) bool {
	return a == b || math.Abs(a-b) <= rel*math.Max(math.Abs(a), math.Abs(b))
}

// VAST's images.parquet, as written by pandas (every column nullable).
type vastImageRow struct {
	ID           int64     `parquet:"id,optional"`
	BandID       int64     `parquet:"band_id,optional"`
	SkyRegID     int64     `parquet:"skyreg_id,optional"`
	Polarisation string    `parquet:"polarisation,optional"`
	Name         string    `parquet:"name,optional"`
	DateTime     time.Time `parquet:"datetime,optional,timestamp(millisecond)"`
	JD           float64   `parquet:"jd,optional"`
	Duration     float64   `parquet:"duration,optional"`
	RA           float64   `parquet:"ra,optional"`
	Dec          float64   `parquet:"dec,optional"`
	FOVBMaj      float64   `parquet:"fov_bmaj,optional"`
	FOVBMin      float64   `parquet:"fov_bmin,optional"`
	PhysicalBMaj float64   `parquet:"physical_bmaj,optional"`
	PhysicalBMin float64   `parquet:"physical_bmin,optional"`
	RadiusPixels float64   `parquet:"radius_pixels,optional"`
	BeamBMaj     float64   `parquet:"beam_bmaj,optional"`
	BeamBMin     float64   `parquet:"beam_bmin,optional"`
	BeamBPA      float64   `parquet:"beam_bpa,optional"`
	RMSMedian    float64   `parquet:"rms_median,optional"`
	RMSMin       float64   `parquet:"rms_min,optional"`
	RMSMax       float64   `parquet:"rms_max,optional"`
}

type vastBand struct {
	ID        int64  `parquet:"id,optional"`
	Name      string `parquet:"name,optional"`
	Frequency int64  `parquet:"frequency,optional"`
	Bandwidth int64  `parquet:"bandwidth,optional"`
}

type vastSkyRegion struct {
	ID        int64   `parquet:"id,optional"`
	CentreRA  float64 `parquet:"centre_ra,optional"`
	CentreDec float64 `parquet:"centre_dec,optional"`
	WidthRA   float64 `parquet:"width_ra,optional"`
	WidthDec  float64 `parquet:"width_dec,optional"`
	XtrRadius float64 `parquet:"xtr_radius,optional"`
	X         float64 `parquet:"x,optional"`
	Y         float64 `parquet:"y,optional"`
	Z         float64 `parquet:"z,optional"`
}

type vastSource struct {
	ID                int64   `parquet:"id,optional"`
	NMeas             int64   `parquet:"n_meas,optional"`
	NSibl             int64   `parquet:"n_sibl,optional"`
	WavgRA            float64 `parquet:"wavg_ra,optional"`
	WavgDec           float64 `parquet:"wavg_dec,optional"`
	AvgCompactness    float64 `parquet:"avg_compactness,optional"`
	MinSNR            float64 `parquet:"min_snr,optional"`
	MaxSNR            float64 `parquet:"max_snr,optional"`
	WavgUncertaintyEW float64 `parquet:"wavg_uncertainty_ew,optional"`
	WavgUncertaintyNS float64 `parquet:"wavg_uncertainty_ns,optional"`
	AvgFluxInt        float64 `parquet:"avg_flux_int,optional"`
	AvgFluxPeak       float64 `parquet:"avg_flux_peak,optional"`
	MaxFluxPeak       float64 `parquet:"max_flux_peak,optional"`
	VInt              float64 `parquet:"v_int,optional"`
	VPeak             float64 `parquet:"v_peak,optional"`
	EtaInt            float64 `parquet:"eta_int,optional"`
	EtaPeak           float64 `parquet:"eta_peak,optional"`
}

type vastAssociation struct {
	SourceID int64 `parquet:"source_id,optional"`
	MeasID   int64 `parquet:"meas_id,optional"`
}

func TestVASTImagesBandsAndSkyRegions(t *testing.T) {
	dir := vastdata.VASTDir(t)
	store := newStore(t)
	// Listed out of time order: products must not depend on it.
	p := processVAST(t, store, &testLog{}, "03", "01", "04", "02")

	got, err := ReadImages(context.Background(), store, artifact(t, p, ImagesProduct).Digest)
	if err != nil {
		t.Fatal(err)
	}
	want := readAll[vastImageRow](t, filepath.Join(dir, "expected", "basic-association", "images.parquet"))
	if len(got) != len(want) {
		t.Fatalf("%d images, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.ID != w.ID || g.BandID != w.BandID || g.SkyRegID != w.SkyRegID || g.Name != w.Name || g.Polarisation != w.Polarisation {
			t.Errorf("image %d: id %d band %d skyreg %d name %s pol %s; want %d %d %d %s %s", i, g.ID, g.BandID, g.SkyRegID, g.Name, g.Polarisation, w.ID, w.BandID, w.SkyRegID, w.Name, w.Polarisation)
		}
		if !g.DateTime.Truncate(time.Millisecond).Equal(w.DateTime) {
			t.Errorf("%s datetime %v, want %v", g.Name, g.DateTime, w.DateTime)
		}
		for _, c := range []struct {
			col       string
			got, want float64
		}{
			{"jd", g.JD, w.JD}, {"duration", g.Duration, w.Duration}, {"ra", g.RA, w.RA}, {"dec", g.Dec, w.Dec},
			{"fov_bmaj", g.FOVBMaj, w.FOVBMaj}, {"fov_bmin", g.FOVBMin, w.FOVBMin},
			{"physical_bmaj", g.PhysicalBMaj, w.PhysicalBMaj}, {"physical_bmin", g.PhysicalBMin, w.PhysicalBMin},
			{"radius_pixels", g.RadiusPixels, w.RadiusPixels},
			{"beam_bmaj", g.BeamBMaj, w.BeamBMaj}, {"beam_bmin", g.BeamBMin, w.BeamBMin}, {"beam_bpa", g.BeamBPA, w.BeamBPA},
			{"rms_median", g.RMSMedian, w.RMSMedian}, {"rms_min", g.RMSMin, w.RMSMin}, {"rms_max", g.RMSMax, w.RMSMax},
		} {
			if !closeTo(c.got, c.want, 1e-12) {
				t.Errorf("%s %s = %.17g, want %.17g", g.Name, c.col, c.got, c.want)
			}
		}
		if g.Path != "data/"+w.Name || g.MeasurementsPath != "measurements/"+strings.TrimSuffix(w.Name, ".fits")+".parquet" {
			t.Errorf("%s path %s, measurements %s", g.Name, g.Path, g.MeasurementsPath)
		}
	}

	bands, err := ReadParquet[BandRow](context.Background(), store, artifact(t, p, BandsProduct).Digest)
	if err != nil {
		t.Fatal(err)
	}
	wantBands := readAll[vastBand](t, filepath.Join(dir, "expected", "basic-association", "bands.parquet"))
	if len(bands) != len(wantBands) || bands[0] != BandRow(wantBands[0]) {
		t.Errorf("bands %+v, want %+v", bands, wantBands)
	}
	regions, err := ReadParquet[SkyRegionRow](context.Background(), store, artifact(t, p, SkyRegionsProduct).Digest)
	if err != nil {
		t.Fatal(err)
	}
	wantRegions := readAll[vastSkyRegion](t, filepath.Join(dir, "expected", "basic-association", "skyregions.parquet"))
	if len(regions) != len(wantRegions) {
		t.Fatalf("%d sky regions, want %d", len(regions), len(wantRegions))
	}
	for i, w := range wantRegions {
		g := regions[i]
		if g.ID != w.ID || !closeTo(g.CentreRA, w.CentreRA, 1e-12) || !closeTo(g.CentreDec, w.CentreDec, 1e-12) ||
			!closeTo(g.WidthRA, w.WidthRA, 1e-12) || !closeTo(g.WidthDec, w.WidthDec, 1e-12) || !closeTo(g.XtrRadius, w.XtrRadius, 1e-12) ||
			!closeTo(g.X, w.X, 1e-12) || !closeTo(g.Y, w.Y, 1e-12) || !closeTo(g.Z, w.Z, 1e-12) {
			t.Errorf("sky region %d = %+v, want %+v", i, g, w)
		}
	}

	if p.Figures.NImages != 4 || p.Figures.NSelavyMeasurements != 20 || p.Figures.NSources != 0 {
		t.Errorf("figures %+v, want 4 images and 20 measurements", p.Figures)
	}
	for i, im := range p.Images {
		if im.Name != want[i].Name || im.NMeasurements != []int{4, 7, 4, 5}[i] || im.FrequencyMHz != 888 || im.Path != "data/"+want[i].Name {
			t.Errorf("image summary %d: %+v", i, im)
		}
	}
}

// TestVASTMeasurementsMatchSources checks the measurements against VAST's
// own results: grouping them by the expected associations must reproduce
// the per-source aggregates VAST computed from its measurements (means,
// weighted positions, uncertainties, variability metrics), which depend on
// every derived column (snr, compactness, Condon errors, error radius,
// weights) and on measurement ids.
func TestVASTMeasurementsMatchSources(t *testing.T) {
	dir := vastdata.VASTDir(t)
	store := newStore(t)
	p := processVAST(t, store, &testLog{}, "01", "02", "03", "04")
	byID := map[int64]Measurement{}
	var nextID int64 = 1
	for i, im := range p.Images {
		ms, err := ReadMeasurements(context.Background(), store, artifact(t, p, MeasurementsProduct(im.Name)).Digest)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.ID != nextID || m.ImageID != int64(i+1) || !m.Time.Equal(im.DateTime) || m.Forced {
				t.Errorf("%s: measurement id %d image %d time %v; want id %d image %d", im.Name, m.ID, m.ImageID, m.Time, nextID, i+1)
			}
			nextID++
			byID[m.ID] = m
		}
	}
	assoc := readAll[vastAssociation](t, filepath.Join(dir, "expected", "basic-association", "associations.parquet"))
	sources := readAll[vastSource](t, filepath.Join(dir, "expected", "basic-association", "sources.parquet"))
	members := map[int64][]Measurement{}
	for _, a := range assoc {
		m, ok := byID[a.MeasID]
		if !ok {
			t.Fatalf("association to unknown measurement %d", a.MeasID)
		}
		members[a.SourceID] = append(members[a.SourceID], m)
	}
	// Tolerances: eta subtracts sums of w·f² near 1e8 to leave numbers near
	// 1, so rounding differences in summation order show at 1e-9.
	for _, s := range sources {
		ms := members[s.ID]
		if int64(len(ms)) != s.NMeas {
			t.Fatalf("source %d: %d measurements, want %d", s.ID, len(ms), s.NMeas)
		}
		g := aggregate(ms)
		for _, c := range []struct {
			col       string
			got, want float64
			rel       float64
		}{
			{"avg_flux_int", g.avgFluxInt, s.AvgFluxInt, 1e-12},
			{"avg_flux_peak", g.avgFluxPeak, s.AvgFluxPeak, 1e-12},
			{"max_flux_peak", g.maxFluxPeak, s.MaxFluxPeak, 0},
			{"min_snr", g.minSNR, s.MinSNR, 1e-12},
			{"max_snr", g.maxSNR, s.MaxSNR, 1e-12},
			{"avg_compactness", g.avgCompactness, s.AvgCompactness, 1e-12},
			{"wavg_ra", g.wavgRA, s.WavgRA, 1e-12},
			{"wavg_dec", g.wavgDec, s.WavgDec, 1e-12},
			{"wavg_uncertainty_ew", g.wavgUncEW, s.WavgUncertaintyEW, 1e-12},
			{"wavg_uncertainty_ns", g.wavgUncNS, s.WavgUncertaintyNS, 1e-12},
			{"v_int", g.vInt, s.VInt, 1e-12},
			{"v_peak", g.vPeak, s.VPeak, 1e-12},
			{"eta_int", g.etaInt, s.EtaInt, 1e-8},
			{"eta_peak", g.etaPeak, s.EtaPeak, 1e-8},
			{"n_sibl", float64(g.nSibl), float64(s.NSibl), 0},
		} {
			if !closeTo(c.got, c.want, c.rel) {
				t.Errorf("source %d %s = %.17g, want %.17g (rel diff %.2g)", s.ID, c.col, c.got, c.want, math.Abs(c.got-c.want)/math.Abs(c.want))
			}
		}
	}
}

type sourceAggregates struct {
	avgFluxInt, avgFluxPeak, maxFluxPeak, minSNR, maxSNR, avgCompactness float64
	wavgRA, wavgDec, wavgUncEW, wavgUncNS                                float64
	vInt, vPeak, etaInt, etaPeak                                         float64
	nSibl                                                                int
}

// aggregate computes VAST's per-source statistics from measurements.
func aggregate(ms []Measurement) sourceAggregates {
	var g sourceAggregates
	n := float64(len(ms))
	var sumWEW, sumWNS, sumRA, sumDec float64
	g.minSNR, g.maxSNR, g.maxFluxPeak = math.Inf(1), math.Inf(-1), math.Inf(-1)
	var fi, fp, wi, wp []float64
	for _, m := range ms {
		g.avgFluxInt += m.FluxInt / n
		g.avgFluxPeak += m.FluxPeak / n
		g.avgCompactness += m.Compactness / n
		g.maxFluxPeak = math.Max(g.maxFluxPeak, m.FluxPeak)
		g.minSNR = math.Min(g.minSNR, m.SNR)
		g.maxSNR = math.Max(g.maxSNR, m.SNR)
		sumWEW += m.WeightEW
		sumWNS += m.WeightNS
		sumRA += m.RA * m.WeightEW
		sumDec += m.Dec * m.WeightNS
		fi = append(fi, m.FluxInt)
		fp = append(fp, m.FluxPeak)
		wi = append(wi, 1/(m.FluxIntErr*m.FluxIntErr))
		wp = append(wp, 1/(m.FluxPeakErr*m.FluxPeakErr))
		if m.HasSiblings {
			g.nSibl++
		}
	}
	g.wavgRA, g.wavgDec = sumRA/sumWEW, sumDec/sumWNS
	g.wavgUncEW, g.wavgUncNS = 1/math.Sqrt(sumWEW), 1/math.Sqrt(sumWNS)
	if len(ms) > 1 {
		g.vInt, g.vPeak = cv(fi), cv(fp)
		g.etaInt, g.etaPeak = eta(fi, wi), eta(fp, wp)
	}
	return g
}

func mean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// cv is the sample standard deviation over the mean.
func cv(v []float64) float64 {
	m := mean(v)
	var ss float64
	for _, x := range v {
		ss += (x - m) * (x - m)
	}
	return math.Sqrt(ss/float64(len(v)-1)) / m
}

// eta is VAST's weighted reduced chi-squared variability statistic.
func eta(f, w []float64) float64 {
	n := float64(len(f))
	wf, wf2 := make([]float64, len(f)), make([]float64, len(f))
	for i := range f {
		wf[i] = w[i] * f[i]
		wf2[i] = w[i] * f[i] * f[i]
	}
	return n / (n - 1) * (mean(wf2) - mean(wf)*mean(wf)/mean(w))
}

func TestVASTInvalidCatalogueFails(t *testing.T) {
	store := newStore(t)
	in := vastInputs("01")
	in.Images = append(in.Images, "data/epoch-invalid.fits")
	in.Selavy = append(in.Selavy, "data/epoch-invalid.selavy.components.txt")
	in.Noise = append(in.Noise, "data/epoch-invalid.noiseMap.fits")
	in.Background = append(in.Background, "data/epoch-invalid.meanMap.fits")
	job := Job{Run: "bad", ImagesRoot: vastdata.VASTDir(t), Config: domain.RunConfig{Inputs: in}}
	_, err := Process(context.Background(), store, job, &testLog{})
	if !errors.Is(err, selavy.ErrMissingColumn) {
		t.Fatalf("err = %v, want a missing column error", err)
	}
	want := "read selavy catalogue data/epoch-invalid.selavy.components.txt: line 1: missing columns island_id, component_id"
	if !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "flux_peak") {
		t.Errorf("err = %q\nwant it to start %q and name flux_peak", err, want)
	}
}

func TestVASTCatalogueFormatsGiveSameMeasurements(t *testing.T) {
	// The txt and xml epoch01 catalogues hold the same components, so they
	// must give byte-identical measurement products.
	digests := map[string]string{}
	for _, ext := range []string{"txt", "xml"} {
		store := newStore(t)
		in := vastInputs("01")
		in.Selavy[0] = "data/epoch01.selavy.components." + ext
		p, err := Process(context.Background(), store, Job{ImagesRoot: vastdata.VASTDir(t), Config: domain.RunConfig{Inputs: in}}, &testLog{})
		if err != nil {
			t.Fatal(err)
		}
		digests[ext] = artifact(t, p, "measurements/epoch01.parquet").Digest
	}
	if digests["txt"] != digests["xml"] {
		t.Errorf("txt and xml catalogues gave different measurements: %v", digests)
	}
}

func TestVASTAddModeEqualsFullRun(t *testing.T) {
	store := newStore(t)
	full := processVAST(t, store, &testLog{}, "01", "02", "03", "04")
	first := processVAST(t, store, &testLog{}, "01", "02")
	log := &testLog{}
	job := Job{Run: "vast", ImagesRoot: vastdata.VASTDir(t), Add: true, Previous: &first,
		Config: domain.RunConfig{YAML: vastConfig, Inputs: vastInputs("01", "02", "03", "04")}}
	added, err := Process(context.Background(), store, job, log)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(added.Artifacts, full.Artifacts) {
		t.Errorf("add mode products differ from a full run:\n%v\n%v", added.Artifacts, full.Artifacts)
	}
	if n := log.count("INFO image data/"); n != 2 {
		t.Errorf("add mode logged %d images read, want 2:\n%s", n, strings.Join(log.lines, "\n"))
	}
}
