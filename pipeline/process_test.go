package pipeline

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/piperun/piperun/artifacts"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/pipeline/fits"
	"github.com/piperun/piperun/pipeline/selavy"
	"github.com/piperun/piperun/synth"
)

func generate(t *testing.T, opts synth.Options) synth.Survey {
	t.Helper()
	sv, err := synth.Generate(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return sv
}

func synthJob(sv synth.Survey, images []synth.ImageFiles) Job {
	return Job{Run: "synth", ImagesRoot: sv.Dir, Config: domain.RunConfig{Inputs: synth.Inputs(images)}}
}

func mustProcess(t *testing.T, store *artifacts.Store, job Job, log Logger) domain.Products {
	t.Helper()
	p, err := Process(context.Background(), store, job, log)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestProcessSyntheticSurvey(t *testing.T) {
	sv := generate(t, synth.Options{Images: 5, Sources: 300, Seed: 11})
	store := newStore(t)
	log := &testLog{}
	// Inputs out of time order.
	imgs := slices.Clone(sv.Images)
	slices.Reverse(imgs)
	p := mustProcess(t, store, synthJob(sv, imgs), log)

	total := 0
	for _, im := range sv.Images {
		total += im.Components
	}
	if p.Figures.NImages != 5 || p.Figures.NSelavyMeasurements != total || p.Figures.NSources != 0 {
		t.Errorf("figures %+v, want 5 images and %d measurements", p.Figures, total)
	}
	if n := log.count("INFO image "); n != 5 {
		t.Errorf("%d per-image info lines, want 5", n)
	}
	if log.count("DEBUG image ") == 0 {
		t.Error("no debug lines with header details")
	}
	wantNames := []string{BandsProduct, ImagesProduct}
	for _, im := range sv.Images {
		wantNames = append(wantNames, MeasurementsProduct(im.Image))
	}
	wantNames = append(wantNames, SkyRegionsProduct)
	var names []string
	for _, a := range p.Artifacts {
		names = append(names, a.Name)
		if err := store.Verify(context.Background(), a.Digest, a.Size); err != nil {
			t.Error(err)
		}
	}
	if !slices.Equal(names, wantNames) {
		t.Errorf("artifacts %v, want %v", names, wantNames)
	}

	var nextID int64 = 1
	for i, im := range sv.Images {
		sum := p.Images[i]
		if sum.Name != im.Image || !sum.DateTime.Equal(im.DateTime) || sum.NMeasurements != im.Components {
			t.Errorf("image %d summary %+v, want %s at %v with %d", i, sum, im.Image, im.DateTime, im.Components)
		}
		ms, err := ReadMeasurements(context.Background(), store, artifact(t, p, MeasurementsProduct(im.Image)).Digest)
		if err != nil {
			t.Fatal(err)
		}
		// The product holds exactly what the catalogue gives.
		cs, err := selavy.ReadFile(context.Background(), filepath.Join(sv.Dir, im.Selavy))
		if err != nil {
			t.Fatal(err)
		}
		info, err := fits.ReadImageInfo(context.Background(), filepath.Join(sv.Dir, im.Image))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := buildMeasurements(cs, info, int64(i+1), nextID, namePrefix(im.Image), DefaultSettings())
		if !reflect.DeepEqual(ms, want) {
			t.Fatalf("image %d: measurements read back differ from those built", i)
		}
		nextID += int64(len(ms))
	}
	rows, err := ReadImages(context.Background(), store, artifact(t, p, ImagesProduct).Digest)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		if r.ID != int64(i+1) || r.Name != sv.Images[i].Image || r.BandID != 1 || r.SkyRegID != 1 || r.NSel != int64(sv.Images[i].Components) {
			t.Errorf("images row %d: %+v", i, r)
		}
		if !(r.RMSMin > 0 && r.RMSMin <= r.RMSMedian && r.RMSMedian <= r.RMSMax) {
			t.Errorf("rms stats %v %v %v", r.RMSMin, r.RMSMedian, r.RMSMax)
		}
	}
}

func TestProcessIsDeterministic(t *testing.T) {
	sv := generate(t, synth.Options{Images: 3, Sources: 200, Seed: 5, CSV: true})
	a := mustProcess(t, newStore(t), synthJob(sv, sv.Images), &testLog{})
	imgs := slices.Clone(sv.Images)
	imgs[0], imgs[2] = imgs[2], imgs[0]
	b := mustProcess(t, newStore(t), synthJob(sv, imgs), &testLog{})
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("two runs differ:\n%+v\n%+v", a.Artifacts, b.Artifacts)
	}
	// The CSV catalogues hold the same components: same products.
	csvImgs := slices.Clone(sv.Images)
	for i := range csvImgs {
		csvImgs[i].Selavy = csvImgs[i].SelavyCSV
	}
	job := synthJob(sv, csvImgs)
	c := mustProcess(t, newStore(t), job, &testLog{})
	for _, art := range a.Artifacts {
		if art.Name == ImagesProduct {
			continue // it records the selavy path
		}
		if got := artifact(t, c, art.Name); got != art {
			t.Errorf("%s from csv catalogues: %s, from txt %s", art.Name, got.Digest, art.Digest)
		}
	}
}

func TestAddModeReusesPreviousImages(t *testing.T) {
	sv := generate(t, synth.Options{Images: 6, Sources: 150, Seed: 3})
	store := newStore(t)
	full := mustProcess(t, store, synthJob(sv, sv.Images), &testLog{})
	first := mustProcess(t, store, synthJob(sv, sv.Images[:4]), &testLog{})

	// The first four images are not read again: remove their files.
	for _, im := range sv.Images[:4] {
		for _, f := range []string{im.Image, im.Selavy, im.Noise, im.Background} {
			if err := os.Remove(filepath.Join(sv.Dir, f)); err != nil {
				t.Fatal(err)
			}
		}
	}
	job := synthJob(sv, sv.Images)
	job.Add, job.Previous = true, &first
	log := &testLog{}
	added := mustProcess(t, store, job, log)
	if !reflect.DeepEqual(added, full) {
		t.Errorf("add mode differs from a full run:\n%+v\n%+v", added.Artifacts, full.Artifacts)
	}
	for _, im := range sv.Images[:4] {
		name := MeasurementsProduct(im.Image)
		if artifact(t, added, name) != artifact(t, first, name) {
			t.Errorf("%s was rewritten", name)
		}
	}
	if n := log.count("INFO image "); n != 2 {
		t.Errorf("read %d images, want 2", n)
	}
}

func TestAddModeWithAnEarlierImage(t *testing.T) {
	sv := generate(t, synth.Options{Images: 3, Sources: 40, Seed: 8})
	store := newStore(t)
	// Process the later two images, then add the earliest.
	first := mustProcess(t, store, synthJob(sv, sv.Images[1:]), &testLog{})
	job := synthJob(sv, sv.Images)
	job.Add, job.Previous = true, &first
	p := mustProcess(t, store, job, &testLog{})
	rows, err := ReadImages(context.Background(), store, artifact(t, p, ImagesProduct).Digest)
	if err != nil {
		t.Fatal(err)
	}
	// Rows in time order; old images keep ids 1 and 2, the new one is 3
	// and its measurements are numbered after theirs.
	if rows[0].Name != sv.Images[0].Image || rows[0].ID != 3 || rows[1].ID != 1 || rows[2].ID != 2 {
		t.Fatalf("rows %v %v %v", rows[0], rows[1], rows[2])
	}
	ms, err := ReadMeasurements(context.Background(), store, artifact(t, p, MeasurementsProduct(sv.Images[0].Image)).Digest)
	if err != nil {
		t.Fatal(err)
	}
	if want := rows[1].NMeas + rows[2].NMeas + 1; ms[0].ID != want || ms[0].ImageID != 3 {
		t.Errorf("first new measurement id %d image %d, want id %d image 3", ms[0].ID, ms[0].ImageID, want)
	}
	if p.Images[0].Name != sv.Images[0].Image {
		t.Errorf("summaries not in time order: %+v", p.Images)
	}
}

func TestAddModeRefusals(t *testing.T) {
	sv := generate(t, synth.Options{Images: 3, Sources: 20, Seed: 2})
	store := newStore(t)
	first := mustProcess(t, store, synthJob(sv, sv.Images[:2]), &testLog{})

	noImages := first.Clone()
	noImages.Artifacts = slices.DeleteFunc(noImages.Artifacts, func(a domain.Artifact) bool { return a.Name == ImagesProduct })

	changed := slices.Clone(sv.Images)
	changed[0].Selavy = changed[2].Selavy

	tests := []struct {
		name   string
		images []synth.ImageFiles
		prev   *domain.Products
		want   error
	}{
		{name: "no previous", images: sv.Images, want: ErrInvalidJob},
		{name: "no images product", images: sv.Images, prev: &noImages, want: ErrInvalidJob},
		{name: "removes an image", images: sv.Images[1:], prev: &first, want: ErrInvalidJob},
		{name: "changes a catalogue", images: changed, prev: &first, want: ErrInvalidJob},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job := synthJob(sv, tt.images)
			job.Add, job.Previous = true, tt.prev
			if _, err := Process(context.Background(), store, job, &testLog{}); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}

	// A previous product missing from the store is reported.
	if err := store.Delete(artifact(t, first, MeasurementsProduct(sv.Images[0].Image)).Digest); err != nil {
		t.Fatal(err)
	}
	job := synthJob(sv, sv.Images)
	job.Add, job.Previous = true, &first
	if _, err := Process(context.Background(), store, job, &testLog{}); !errors.Is(err, artifacts.ErrMissing) {
		t.Fatalf("missing previous measurements: %v", err)
	}
}

func TestProcessInputErrors(t *testing.T) {
	sv := generate(t, synth.Options{Images: 2, Sources: 5, Seed: 4})
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(sv.Dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	noBeam, err := fits.EncodeHeader([]fits.Card{{Key: "SIMPLE", Value: true}, {Key: "BITPIX", Value: -32}, {Key: "NAXIS", Value: 0}, {Key: "DATE-OBS", Value: "2020-01-01T00:00:00"}})
	if err != nil {
		t.Fatal(err)
	}
	write("nobeam.fits", noBeam)
	write("notfits.fits", []byte(strings.Repeat("x", 3000)))
	if err := os.MkdirAll(filepath.Join(sv.Dir, "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(sv.Dir, sv.Images[0].Image))
	write("b/"+sv.Images[0].Image, data)

	im := sv.Images[0]
	tests := []struct {
		name   string
		modify func(in *domain.Inputs)
		root   string
		want   error
		text   string
	}{
		{name: "lengths", modify: func(in *domain.Inputs) { in.Noise = in.Noise[:1] }, want: ErrInvalidJob},
		{name: "background length", modify: func(in *domain.Inputs) { in.Background = in.Background[:1] }, want: ErrInvalidJob},
		{name: "epochs length", modify: func(in *domain.Inputs) { in.Epochs = []string{"1"} }, want: ErrInvalidJob},
		{name: "escaping path", modify: func(in *domain.Inputs) { in.Selavy[0] = "../x.txt" }, want: ErrInvalidJob, text: "../x.txt"},
		{name: "duplicate name", modify: func(in *domain.Inputs) { in.Images[1] = "b/" + im.Image }, want: ErrInvalidJob, text: "same name"},
		{name: "relative root", root: "relative/dir", want: ErrInvalidJob},
		{name: "missing noise", modify: func(in *domain.Inputs) { in.Noise[1] = "absent.noiseMap.fits" }, want: os.ErrNotExist, text: "read noise map absent.noiseMap.fits"},
		{name: "background not FITS", modify: func(in *domain.Inputs) { in.Background[0] = "notfits.fits" }, want: fits.ErrNotFITS, text: "read FITS header of notfits.fits"},
		{name: "no beam", modify: func(in *domain.Inputs) { in.Images[0] = "nobeam.fits" }, want: fits.ErrMissingKeyword, text: "read image nobeam.fits: keyword BMAJ"},
		{name: "missing catalogue", modify: func(in *domain.Inputs) { in.Selavy[0] = "absent.txt" }, want: os.ErrNotExist, text: "read selavy catalogue absent.txt"},
		{name: "catalogue extension", modify: func(in *domain.Inputs) { in.Selavy[0] = "cat.fits" }, want: selavy.ErrFormat, text: "cat.fits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job := synthJob(sv, sv.Images)
			if tt.modify != nil {
				tt.modify(&job.Config.Inputs)
			}
			if tt.root != "" {
				job.ImagesRoot = tt.root
			}
			store := newStore(t)
			_, err := Process(context.Background(), store, job, &testLog{})
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("err = %v, want %v mentioning %q", err, tt.want, tt.text)
			}
			if strings.Contains(err.Error(), sv.Dir) {
				t.Errorf("error %q names the absolute path; want paths as configured", err)
			}
		})
	}
}

// TestProcessWithoutBackgroundMaps: background maps are optional when
// forced extraction is off (VAST reads them only for it). A job that lists
// none gives the products of one that lists them, but for images.parquet,
// whose background_path is empty.
func TestProcessWithoutBackgroundMaps(t *testing.T) {
	sv := generate(t, synth.Options{Images: 3, Sources: 40, Seed: 8})
	with := mustProcess(t, newStore(t), synthJob(sv, sv.Images), &testLog{})
	job := synthJob(sv, sv.Images)
	job.Config.Inputs.Background = nil
	store := newStore(t)
	without := mustProcess(t, store, job, &testLog{})
	if len(with.Artifacts) != len(without.Artifacts) {
		t.Fatalf("%d products without background maps, %d with", len(without.Artifacts), len(with.Artifacts))
	}
	for i, a := range with.Artifacts {
		if b := without.Artifacts[i]; a.Name != ImagesProduct && a != b {
			t.Errorf("%s: %s without background maps, %s with", a.Name, b.Digest, a.Digest)
		}
	}
	rows, err := ReadImages(context.Background(), store, artifact(t, without, ImagesProduct).Digest)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.BackgroundPath != "" || r.NoisePath == "" {
			t.Errorf("image %s: background %q, noise %q", r.Name, r.BackgroundPath, r.NoisePath)
		}
	}
}

// cancelOnImage cancels the job's context when the first image is logged.
type cancelOnImage struct {
	testLog
	cancel context.CancelFunc
}

func (c *cancelOnImage) Infof(f string, a ...any) {
	c.testLog.Infof(f, a...)
	if strings.HasPrefix(f, "image ") {
		c.cancel()
	}
}

func TestProcessStopsWhenCancelled(t *testing.T) {
	sv := generate(t, synth.Options{Images: 4, Sources: 10, Seed: 6})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Process(ctx, newStore(t), synthJob(sv, sv.Images), &testLog{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled before start: %v", err)
	}
	// Read one at a time, no image is read after the one that saw the
	// cancellation; read two at a time, at most the other one in flight.
	for _, workersIO := range []int{1, 2} {
		ctx, cancel = context.WithCancel(context.Background())
		log := &cancelOnImage{cancel: cancel}
		job := synthJob(sv, sv.Images)
		s := DefaultSettings()
		s.NumWorkersIO = workersIO
		job.Settings = &s
		if _, err := Process(ctx, newStore(t), job, log); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled during: %v", err)
		}
		if n := log.count("INFO image "); n < 1 || n > workersIO {
			t.Errorf("%d images processed after cancellation with %d read at once, want 1 to %d", n, workersIO, workersIO)
		}
	}
}

type fakeAssociator struct {
	in  AssociationInput
	err error
}

func (f *fakeAssociator) Associate(ctx context.Context, store *artifacts.Store, in AssociationInput, log Logger) (AssociationResult, error) {
	f.in = in
	if f.err != nil {
		return AssociationResult{}, f.err
	}
	a, err := PutParquet(ctx, store, "sources.parquet", []BandRow{{ID: 1}})
	if err != nil {
		return AssociationResult{}, err
	}
	return AssociationResult{Artifacts: []domain.Artifact{a}, NSources: 7, NNewSources: 2, NForcedMeasurements: 3}, nil
}

func TestAssociatorSeam(t *testing.T) {
	sv := generate(t, synth.Options{Images: 3, Sources: 30, Seed: 12})
	store := newStore(t)
	first := mustProcess(t, store, synthJob(sv, sv.Images[:2]), &testLog{})
	assoc := &fakeAssociator{}
	job := synthJob(sv, sv.Images)
	job.Add, job.Previous, job.Associate = true, &first, assoc
	p := mustProcess(t, store, job, &testLog{})
	if p.Figures.NSources != 7 || p.Figures.NNewSources != 2 || p.Figures.NForcedMeasurements != 3 {
		t.Errorf("figures %+v", p.Figures)
	}
	if _, ok := FindArtifact(p, "sources.parquet"); !ok {
		t.Error("associator's product missing")
	}
	if len(assoc.in.Images) != 3 {
		t.Fatalf("associator saw %d images", len(assoc.in.Images))
	}
	for i, ip := range assoc.in.Images {
		if ip.Image.Name != sv.Images[i].Image || ip.New != (i == 2) || ip.Measurements.Name != MeasurementsProduct(ip.Image.Name) {
			t.Errorf("associator image %d: %s new=%v %s", i, ip.Image.Name, ip.New, ip.Measurements.Name)
		}
	}
	boom := errors.New("boom")
	job.Associate = &fakeAssociator{err: boom}
	if _, err := Process(context.Background(), store, job, &testLog{}); !errors.Is(err, boom) {
		t.Errorf("associator error: %v", err)
	}
}

func TestEmptyCatalogueAndBlankNoiseMap(t *testing.T) {
	sv := generate(t, synth.Options{Images: 2, Sources: 5, Seed: 1})
	cat, err := os.ReadFile(filepath.Join(sv.Dir, sv.Images[1].Selavy))
	if err != nil {
		t.Fatal(err)
	}
	header := strings.SplitAfterN(string(cat), "\n", 3)
	if err := os.WriteFile(filepath.Join(sv.Dir, "empty.txt"), []byte(header[0]+header[1]), 0o644); err != nil {
		t.Fatal(err)
	}
	blank, err := fits.EncodeHeader([]fits.Card{{Key: "SIMPLE", Value: true}, {Key: "BITPIX", Value: -32}, {Key: "NAXIS", Value: 2}, {Key: "NAXIS1", Value: 4}, {Key: "NAXIS2", Value: 4}})
	if err != nil {
		t.Fatal(err)
	}
	blank = append(blank, make([]byte, fits.BlockSize)...)
	if err := os.WriteFile(filepath.Join(sv.Dir, "blank.fits"), blank, 0o644); err != nil {
		t.Fatal(err)
	}
	job := synthJob(sv, sv.Images)
	job.Config.Inputs.Selavy[1] = "empty.txt"
	job.Config.Inputs.Noise[1] = "blank.fits"
	store := newStore(t)
	log := &testLog{}
	p := mustProcess(t, store, job, log)
	if p.Images[1].NMeasurements != 0 || p.Figures.NSelavyMeasurements != sv.Images[0].Components {
		t.Errorf("figures %+v images %+v", p.Figures, p.Images)
	}
	ms, err := ReadMeasurements(context.Background(), store, artifact(t, p, MeasurementsProduct(sv.Images[1].Image)).Digest)
	if err != nil || len(ms) != 0 {
		t.Fatalf("empty measurements: %d rows, %v", len(ms), err)
	}
	rows, err := ReadImages(context.Background(), store, artifact(t, p, ImagesProduct).Digest)
	if err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(rows[1].RMSMedian) || log.count("WARN image ") != 1 {
		t.Errorf("blank noise map: rms %v, warnings %d", rows[1].RMSMedian, log.count("WARN image "))
	}
}

func TestSettingsFromConfig(t *testing.T) {
	s, err := SettingsFromConfig(domain.RunConfig{})
	if err != nil || s != DefaultSettings() {
		t.Errorf("empty config: %+v, %v", s, err)
	}
	yaml := strings.Replace(vastConfig, "condon_errors: true", "condon_errors: false", 1)
	yaml = strings.Replace(yaml, "ra_uncertainty: 1", "ra_uncertainty: 2.5", 1)
	yaml = strings.Replace(yaml, "flux_fractional_error: 0.0", "flux_fractional_error: 0.05", 1)
	s, err = SettingsFromConfig(domain.RunConfig{YAML: yaml})
	want := DefaultSettings()
	want.CondonErrors, want.RAUncertaintyArcsec, want.FluxFractionalError = false, 2.5, 0.05
	if err != nil || s != want {
		t.Errorf("settings %+v, %v; want %+v", s, err, want)
	}
	if _, err := SettingsFromConfig(domain.RunConfig{YAML: "measurements: [\n"}); err == nil {
		t.Error("malformed YAML: want an error")
	}
}

func TestBuildMeasurements(t *testing.T) {
	info := fits.ImageInfo{BeamMajDeg: 15.0 / 3600, BeamMinDeg: 10.0 / 3600}
	base := selavy.Component{
		IslandID: "i1", ComponentID: "c1a", ComponentName: "J1", RADeg: 10, DecDeg: -20,
		RAErr: 0.001, DecErr: 0.5, FluxPeak: 10, FluxPeakErr: 0.0001, FluxInt: 12, FluxIntErr: 0.2,
		MajAxis: 16, MinAxis: 11, PosAng: 30, RMSImage: 0.5,
	}
	noCondon := DefaultSettings()
	noCondon.CondonErrors = false

	t.Run("floors and derived columns", func(t *testing.T) {
		ms, d := buildMeasurements([]selavy.Component{base}, info, 3, 10, "ep_", noCondon)
		if len(ms) != 1 || d != (dropped{}) {
			t.Fatalf("%d measurements, dropped %+v", len(ms), d)
		}
		m := ms[0]
		checks := []struct {
			name      string
			got, want float64
		}{
			{"ra_err floored to 0.01 arcsec", m.RAErr, 0.01 / 3600},
			{"dec_err in degrees", m.DecErr, 0.5 / 3600},
			{"flux_peak_err floored", m.FluxPeakErr, 0.001},
			{"snr", m.SNR, 20},
			{"compactness", m.Compactness, 1.2},
			{"ew_sys_err", m.EWSysErr, 1.0 / 3600},
			{"uncertainty_ew", m.UncertaintyEW, math.Hypot(1.0/3600, m.ErrorRadius)},
			{"weight_ns", m.WeightNS, 1 / (m.UncertaintyNS * m.UncertaintyNS)},
			{"island ratio", m.FluxIntIslRatio, 1},
		}
		for _, c := range checks {
			if !closeTo(c.got, c.want, 1e-12) {
				t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
			}
		}
		// The error radius is the largest corner offset: about the dec error.
		if !closeTo(m.ErrorRadius, math.Hypot(0.5, 0.01)/3600, 1e-3) {
			t.Errorf("error radius %v arcsec", m.ErrorRadius*3600)
		}
		if m.ID != 10 || m.ImageID != 3 || m.Name != "ep_c1a" || m.Forced {
			t.Errorf("ids/name %+v", m)
		}
	})

	t.Run("fill zero rms and fractional error", func(t *testing.T) {
		c := base
		c.RMSImage = 0
		s := noCondon
		s.FluxFractionalError = 0.1
		ms, _ := buildMeasurements([]selavy.Component{c}, info, 1, 1, "", s)
		if ms[0].LocalRMS != 0.2 || !closeTo(ms[0].SNR, 50, 1e-12) {
			t.Errorf("local rms %v snr %v", ms[0].LocalRMS, ms[0].SNR)
		}
		if !closeTo(ms[0].FluxIntErr, math.Hypot(0.2, 1.2), 1e-12) {
			t.Errorf("flux_int_err %v", ms[0].FluxIntErr)
		}
	})

	t.Run("condon errors shrink with snr", func(t *testing.T) {
		bright := base
		bright.FluxPeak, bright.FluxInt = 1000, 1200
		ms, _ := buildMeasurements([]selavy.Component{base, func() selavy.Component { b := bright; b.ComponentID = "c2a"; return b }()}, info, 1, 1, "", DefaultSettings())
		faint, br := ms[0], ms[1]
		for _, p := range [][2]float64{{faint.RAErr, br.RAErr}, {faint.FluxPeakErr / faint.FluxPeak, br.FluxPeakErr / br.FluxPeak}, {faint.ErrBMaj, br.ErrBMaj}} {
			if !(p[0] > 0 && closeTo(p[0]/p[1], 100, 1e-9)) {
				t.Errorf("error ratio %v / %v, want 100 (errors scale as 1/snr)", p[0], p[1])
			}
		}
		// Condon: σ(A)/A = √2/ρ3.
		major, minor := 16.0/3600, 11.0/3600
		rho3 := math.Sqrt(major * minor / (4 * info.BeamMajDeg * info.BeamMinDeg) * math.Pow(1+math.Pow(info.BeamMajDeg/major, 2), 1.5) * math.Pow(1+math.Pow(info.BeamMinDeg/minor, 2), 1.5) * faint.SNR * faint.SNR)
		if !closeTo(faint.FluxPeakErr, math.Sqrt2*faint.FluxPeak/rho3, 1e-12) {
			t.Errorf("flux_peak_err %v, want %v", faint.FluxPeakErr, math.Sqrt2*faint.FluxPeak/rho3)
		}
	})

	t.Run("drops", func(t *testing.T) {
		zero := base
		zero.ComponentID, zero.FluxInt = "z", 0
		tiny := base
		tiny.ComponentID, tiny.MinAxis = "t", 10.0/3600*500 // not larger than 500 beam-degrees
		sib := base
		sib.ComponentID, sib.FluxInt, sib.FluxPeak = "s", 36, 30
		ms, d := buildMeasurements([]selavy.Component{zero, base, tiny, sib}, info, 1, 5, "", noCondon)
		if d != (dropped{zero: 1, tiny: 1}) || len(ms) != 2 || ms[0].ID != 5 || ms[1].ID != 6 {
			t.Fatalf("dropped %+v, kept %d", d, len(ms))
		}
		if !closeTo(ms[0].FluxIntIslRatio, 12.0/48, 1e-15) || !closeTo(ms[1].FluxPeakIslRatio, 30.0/40, 1e-15) {
			t.Errorf("island ratios %v %v", ms[0].FluxIntIslRatio, ms[1].FluxPeakIslRatio)
		}
	})
}

func TestNamePrefix(t *testing.T) {
	for in, want := range map[string]string{
		"epoch01.fits": "epoch01_",
		"image.i.SB9602.cont.taylor.0.restored.fits": "SB9602_",
		"VAST_0012-06A.EPOCH01.I.fits":               "VAST_0012-06A_",
		"noext":                                      "noext_",
	} {
		if got := namePrefix(in); got != want {
			t.Errorf("namePrefix(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestProductsCarryNoBuildInformation(t *testing.T) {
	// The default created-by string names the build, which would make
	// digests differ between binaries.
	store := newStore(t)
	a, err := PutParquet(context.Background(), store, "x.parquet", []BandRow{{ID: 1, Name: "888", Frequency: 888, Bandwidth: 288}})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := store.Open(a.Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Metadata().CreatedBy; got != "piperun" {
		t.Errorf("created_by %q", got)
	}
}
