package fits

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/piperun/piperun/internal/vastdata"
)

// vastImage holds the columns of VAST's images.parquet that come from the
// FITS headers.
type vastImage struct {
	Name         string    `parquet:"name,optional"`
	DateTime     time.Time `parquet:"datetime,optional,timestamp(millisecond)"`
	JD           float64   `parquet:"jd,optional"`
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

func readVASTImages(t *testing.T) map[string]vastImage {
	t.Helper()
	rows, err := parquet.ReadFile[vastImage](vastdata.VASTFile(t, "expected", "basic-association", "images.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string]vastImage)
	for _, r := range rows {
		m[r.Name] = r
	}
	return m
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol*math.Max(1, math.Abs(b)) }

func TestImageInfoMatchesVAST(t *testing.T) {
	dir := vastdata.VASTDir(t)
	want := readVASTImages(t)
	if len(want) != 4 {
		t.Fatalf("expected images.parquet has %d images", len(want))
	}
	for name, w := range want {
		t.Run(name, func(t *testing.T) {
			info, err := ReadImageInfo(context.Background(), filepath.Join(dir, "data", name))
			if err != nil {
				t.Fatal(err)
			}
			// VAST stores datetimes in milliseconds.
			if !info.DateTime.Truncate(time.Millisecond).Equal(w.DateTime) {
				t.Errorf("datetime %v, want %v", info.DateTime, w.DateTime)
			}
			if jd := JulianDate(info.DateTime); !near(jd, w.JD, 1e-15) {
				t.Errorf("jd %.10f, want %.10f", jd, w.JD)
			}
			checks := []struct {
				col       string
				got, want float64
			}{
				{"ra", info.RADeg, w.RA}, {"dec", info.DecDeg, w.Dec},
				{"fov_bmaj", info.FOVBMajDeg, w.FOVBMaj}, {"fov_bmin", info.FOVBMinDeg, w.FOVBMin},
				{"physical_bmaj", info.PhysicalBMajDeg, w.PhysicalBMaj}, {"physical_bmin", info.PhysicalBMinDeg, w.PhysicalBMin},
				{"radius_pixels", info.RadiusPixels, w.RadiusPixels},
				{"beam_bmaj", info.BeamMajDeg, w.BeamBMaj}, {"beam_bmin", info.BeamMinDeg, w.BeamBMin}, {"beam_bpa", info.BeamPADeg, w.BeamBPA},
			}
			for _, c := range checks {
				if !near(c.got, c.want, 1e-12) {
					t.Errorf("%s = %.15g, want %.15g", c.col, c.got, c.want)
				}
			}
			if info.Projection != "SIN" || info.NAxis1 != 256 || info.NAxis2 != 256 {
				t.Errorf("projection %s, size %dx%d", info.Projection, info.NAxis1, info.NAxis2)
			}
			if info.FrequencyMHz != 888 || info.BandwidthMHz != 288 {
				t.Errorf("frequency %v MHz, bandwidth %v MHz; VAST's band is 888/288", info.FrequencyMHz, info.BandwidthMHz)
			}
		})
	}
}

func TestNoiseMapStatsMatchVAST(t *testing.T) {
	dir := vastdata.VASTDir(t)
	for name, w := range readVASTImages(t) {
		noise := filepath.Join(dir, "data", strings.TrimSuffix(name, ".fits")+".noiseMap.fits")
		h, st, err := ReadPixelStats(context.Background(), noise)
		if err != nil {
			t.Fatal(err)
		}
		// The noise maps' DATE-OBS has six fractional digits.
		d, err := h.String("DATE-OBS")
		if err != nil || len(d) != len("2020-08-03T04:33:55.479000") {
			t.Errorf("%s DATE-OBS %q, %v", noise, d, err)
		}
		if tm, err := dateObs(h); err != nil || !tm.Truncate(time.Millisecond).Equal(w.DateTime) {
			t.Errorf("%s DATE-OBS -> %v, %v", noise, tm, err)
		}
		// VAST reports noise statistics in mJy; the maps are in Jy.
		for _, c := range []struct {
			col       string
			got, want float64
		}{{"rms_median", st.Median * 1e3, w.RMSMedian}, {"rms_min", st.Min * 1e3, w.RMSMin}, {"rms_max", st.Max * 1e3, w.RMSMax}} {
			if c.got != c.want {
				t.Errorf("%s %s = %.17g, want %.17g", name, c.col, c.got, c.want)
			}
		}
	}
}

func minimalImage(t *testing.T, drop string, extra ...Card) []byte {
	t.Helper()
	cards := []Card{
		{Key: "SIMPLE", Value: true}, {Key: "BITPIX", Value: -32}, {Key: "NAXIS", Value: 3},
		{Key: "NAXIS1", Value: 16}, {Key: "NAXIS2", Value: 12}, {Key: "NAXIS3", Value: 1},
		{Key: "BMAJ", Value: 0.004}, {Key: "BMIN", Value: 0.003}, {Key: "BPA", Value: 10.0},
		{Key: "CTYPE1", Value: "RA---SIN"}, {Key: "CRVAL1", Value: 12.0}, {Key: "CRPIX1", Value: 9.0}, {Key: "CDELT1", Value: -0.001},
		{Key: "CTYPE2", Value: "DEC--SIN"}, {Key: "CRVAL2", Value: -45.0}, {Key: "CRPIX2", Value: 7.0}, {Key: "CDELT2", Value: 0.001},
		{Key: "CTYPE3", Value: "FREQ"}, {Key: "CRVAL3", Value: 1.3675e9}, {Key: "CDELT3", Value: 1.44e8}, {Key: "CUNIT3", Value: "Hz"},
		{Key: "DATE-OBS", Value: "2021-01-02T03:04:05.123456"},
	}
	var kept []Card
	for _, c := range cards {
		if c.Key != drop {
			kept = append(kept, c)
		}
	}
	data, err := EncodeHeader(append(kept, extra...))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestImageInfoFromMinimalHeader(t *testing.T) {
	h, err := ReadHeader(bytes.NewReader(minimalImage(t, "")))
	if err != nil {
		t.Fatal(err)
	}
	info, err := ImageInfoFromHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2021, 1, 2, 3, 4, 5, 123456000, time.UTC); !info.DateTime.Equal(want) {
		t.Errorf("DateTime %v, want %v", info.DateTime, want)
	}
	if info.FrequencyMHz != 1367.5 || info.BandwidthMHz != 144 {
		t.Errorf("frequency %v / %v", info.FrequencyMHz, info.BandwidthMHz)
	}
	// Pixel (8, 6) is one pixel below CRPIX on both axes.
	x, y := project("SIN", info.RADeg, info.DecDeg, 12, -45)
	if !near(x, 0.001, 1e-9) || !near(y, -0.001, 1e-9) {
		t.Errorf("centre projects to (%v, %v), want (0.001, -0.001)", x, y)
	}
	if !near(info.RadiusPixels, 10, 1e-15) || !near(info.FOVBMinDeg, 0.01, 1e-12) || !near(info.PhysicalBMajDeg, 0.016, 1e-12) || !near(info.PhysicalBMinDeg, 0.012, 1e-12) {
		t.Errorf("geometry %+v", info)
	}
}

func TestImageInfoFrequencyFallbacks(t *testing.T) {
	tests := []struct {
		name  string
		drop  string
		extra []Card
		want  float64
	}{
		{name: "RESTFREQ", drop: "CTYPE3", extra: []Card{{Key: "RESTFREQ", Value: 1.4204e9}}, want: 1420.4},
		{name: "RESTFRQ", drop: "CTYPE3", extra: []Card{{Key: "RESTFRQ", Value: 8.88e8}}, want: 888},
	}
	for _, tt := range tests {
		h, err := ReadHeader(bytes.NewReader(minimalImage(t, tt.drop, tt.extra...)))
		if err != nil {
			t.Fatal(err)
		}
		info, err := ImageInfoFromHeader(h)
		if err != nil || !near(info.FrequencyMHz, tt.want, 1e-12) {
			t.Errorf("%s: %v MHz, %v; want %v", tt.name, info.FrequencyMHz, err, tt.want)
		}
	}
	h, _ := ReadHeader(bytes.NewReader(minimalImage(t, "CTYPE3", Card{Key: "CUNIT3", Value: "GHz"})))
	if _, err := ImageInfoFromHeader(h); !errors.Is(err, ErrMissingKeyword) || !strings.Contains(err.Error(), "RESTFREQ") {
		t.Errorf("no frequency: %v", err)
	}
}

func TestReadImageInfoErrorsNameFileAndKeyword(t *testing.T) {
	dir := t.TempDir()
	for _, key := range []string{"DATE-OBS", "BMAJ", "BMIN", "BPA", "NAXIS1", "CRVAL1", "CDELT2", "CTYPE1"} {
		p := filepath.Join(dir, "no-"+key+".fits")
		if err := os.WriteFile(p, minimalImage(t, key), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := ReadImageInfo(context.Background(), p)
		if err == nil {
			t.Errorf("without %s: no error", key)
			continue
		}
		if !errors.Is(err, ErrMissingKeyword) || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), p) {
			t.Errorf("without %s: %v", key, err)
		}
	}
	bad := filepath.Join(dir, "bad-date.fits")
	os.WriteFile(bad, minimalImage(t, "DATE-OBS", Card{Key: "DATE-OBS", Value: "03/08/20"}), 0o644)
	if _, err := ReadImageInfo(context.Background(), bad); !errors.Is(err, ErrBadValue) || !strings.Contains(err.Error(), "DATE-OBS") {
		t.Errorf("bad DATE-OBS: %v", err)
	}
	if _, err := ReadImageInfo(context.Background(), filepath.Join(dir, "absent.fits")); err == nil || !strings.Contains(err.Error(), "absent.fits") {
		t.Errorf("absent file: %v", err)
	}
	notFITS := filepath.Join(dir, "catalogue.txt")
	os.WriteFile(notFITS, []byte(strings.Repeat("# island_id component_id\n", 200)), 0o644)
	if _, err := ReadImageInfo(context.Background(), notFITS); !errors.Is(err, ErrNotFITS) || !strings.Contains(err.Error(), notFITS) {
		t.Errorf("not FITS: %v", err)
	}
}

func TestParseDateObs(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2020-08-03T04:33:55.479", time.Date(2020, 8, 3, 4, 33, 55, 479e6, time.UTC), true},
		{"2020-08-03T04:33:55.479000", time.Date(2020, 8, 3, 4, 33, 55, 479e6, time.UTC), true},
		{"2020-08-03T04:33:55", time.Date(2020, 8, 3, 4, 33, 55, 0, time.UTC), true},
		{"2020-08-03T04:33:55.5Z", time.Date(2020, 8, 3, 4, 33, 55, 5e8, time.UTC), true},
		{"2020-08-03", time.Date(2020, 8, 3, 0, 0, 0, 0, time.UTC), true},
		{" 2020-08-03T04:33:55.1 ", time.Date(2020, 8, 3, 4, 33, 55, 1e8, time.UTC), true},
		{"03/08/20", time.Time{}, false},
		{"2020-13-03T00:00:00", time.Time{}, false},
		{"", time.Time{}, false},
	}
	for _, tt := range tests {
		got, err := ParseDateObs(tt.in)
		if (err == nil) != tt.ok || tt.ok && !got.Equal(tt.want) {
			t.Errorf("ParseDateObs(%q) = %v, %v; want %v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if tt.ok && got.Location() != time.UTC {
			t.Errorf("ParseDateObs(%q) not UTC", tt.in)
		}
	}
}

func TestJulianDate(t *testing.T) {
	tests := []struct {
		t    time.Time
		want float64
	}{
		{time.Date(2000, 1, 1, 12, 0, 0, 0, time.UTC), 2451545.0},
		{time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), 2440587.5},
		{time.Date(1858, 11, 17, 0, 0, 0, 0, time.UTC), 2400000.5},
	}
	for _, tt := range tests {
		if got := JulianDate(tt.t); got != tt.want {
			t.Errorf("JulianDate(%v) = %v, want %v", tt.t, got, tt.want)
		}
	}
}
