package fits

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"
)

func wcsHeader(t *testing.T, cards ...Card) *Header {
	t.Helper()
	base := []Card{{Key: "SIMPLE", Value: true}, {Key: "BITPIX", Value: -32}, {Key: "NAXIS", Value: 2}}
	data, err := EncodeHeader(append(base, cards...))
	if err != nil {
		t.Fatal(err)
	}
	h, err := ReadHeader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// project is the forward zenithal projection written independently of
// WCS.PixelToWorld (Calabretta & Greisen 2002, eqs. 54-55 and 12-13 for a
// reference point (ra0, dec0)), returning intermediate coordinates in
// degrees.
func project(proj string, ra, dec, ra0, dec0 float64) (x, y float64) {
	a, d, a0, d0 := ra*deg, dec*deg, ra0*deg, dec0*deg
	cosc := math.Sin(d0)*math.Sin(d) + math.Cos(d0)*math.Cos(d)*math.Cos(a-a0)
	x = math.Cos(d) * math.Sin(a-a0)
	y = math.Sin(d)*math.Cos(d0) - math.Cos(d)*math.Sin(d0)*math.Cos(a-a0)
	switch proj {
	case "TAN":
		x, y = x/cosc, y/cosc
	case "ARC":
		c := math.Acos(cosc)
		k := c / math.Sin(c)
		x, y = x*k, y*k
	}
	return x / deg, y / deg
}

func TestPixelToWorldInvertsTheProjection(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, proj := range []string{"SIN", "TAN", "ARC"} {
		for _, centre := range [][2]float64{{150, -30}, {0.1, 0}, {359.9, 60}, {10, -89}} {
			ra0, dec0 := centre[0], centre[1]
			const cdelt = 1.0 / 1800
			rot := 0.3 // radians, exercised through a CD matrix
			cd := [2][2]float64{{-cdelt * math.Cos(rot), cdelt * math.Sin(rot)}, {cdelt * math.Sin(rot), cdelt * math.Cos(rot)}}
			h := wcsHeader(t,
				Card{Key: "CTYPE1", Value: "RA---" + proj}, Card{Key: "CTYPE2", Value: "DEC--" + proj},
				Card{Key: "CRVAL1", Value: ra0}, Card{Key: "CRVAL2", Value: dec0},
				Card{Key: "CRPIX1", Value: 100.5}, Card{Key: "CRPIX2", Value: 80.0},
				Card{Key: "CD1_1", Value: cd[0][0]}, Card{Key: "CD1_2", Value: cd[0][1]},
				Card{Key: "CD2_1", Value: cd[1][0]}, Card{Key: "CD2_2", Value: cd[1][1]},
			)
			w, err := NewWCS(h)
			if err != nil {
				t.Fatal(err)
			}
			if w.Projection != proj {
				t.Fatalf("Projection = %s, want %s", w.Projection, proj)
			}
			det := cd[0][0]*cd[1][1] - cd[0][1]*cd[1][0]
			for range 50 {
				// A point up to 3 degrees from the reference.
				ra := ra0 + (rng.Float64()-0.5)*6/math.Max(math.Cos(dec0*deg), 0.05)
				dec := math.Max(-89.99, math.Min(89.99, dec0+(rng.Float64()-0.5)*6))
				x, y := project(proj, ra, dec, ra0, dec0)
				// Invert the CD matrix to get the pixel.
				p1 := 100.5 + (cd[1][1]*x-cd[0][1]*y)/det
				p2 := 80.0 + (-cd[1][0]*x+cd[0][0]*y)/det
				gra, gdec, err := w.PixelToWorld(p1, p2)
				if err != nil {
					t.Fatal(err)
				}
				if sep := separation(ra, dec, gra, gdec); sep > 1e-9 {
					t.Fatalf("%s at (%g, %g): pixel (%g, %g) -> (%.9f, %.9f), want (%.9f, %.9f): off by %g deg",
						proj, ra0, dec0, p1, p2, gra, gdec, normRA(ra), dec, sep)
				}
			}
		}
	}
}

func separation(ra1, dec1, ra2, dec2 float64) float64 {
	a1, d1, a2, d2 := ra1*deg, dec1*deg, ra2*deg, dec2*deg
	s := math.Sin((d2-d1)/2)*math.Sin((d2-d1)/2) + math.Cos(d1)*math.Cos(d2)*math.Sin((a2-a1)/2)*math.Sin((a2-a1)/2)
	return 2 * math.Asin(math.Sqrt(s)) / deg
}

func TestWCSMatrixForms(t *testing.T) {
	common := []Card{
		{Key: "CTYPE1", Value: "RA---SIN"}, {Key: "CTYPE2", Value: "DEC--SIN"},
		{Key: "CRVAL1", Value: 150.0}, {Key: "CRVAL2", Value: -30.0},
		{Key: "CRPIX1", Value: 129.0}, {Key: "CRPIX2", Value: 129.0},
		{Key: "CDELT1", Value: -1.0 / 1800}, {Key: "CDELT2", Value: 1.0 / 1800},
	}
	rot := 20.0
	s, c := math.Sincos(rot * deg)
	pcNew := []Card{{Key: "PC1_1", Value: c}, {Key: "PC1_2", Value: s}, {Key: "PC2_1", Value: -s}, {Key: "PC2_2", Value: c}}
	pcOld := []Card{{Key: "PC001001", Value: c}, {Key: "PC001002", Value: s}, {Key: "PC002001", Value: -s}, {Key: "PC002002", Value: c}}
	pcCasa := []Card{{Key: "PC01_01", Value: c}, {Key: "PC01_02", Value: s}, {Key: "PC02_01", Value: -s}, {Key: "PC02_02", Value: c}}
	crota := []Card{{Key: "CROTA2", Value: rot}}
	ref := wcsHeader(t, append(append([]Card{}, common...), pcNew...)...)
	wref, err := NewWCS(ref)
	if err != nil {
		t.Fatal(err)
	}
	ra0, dec0, _ := wref.PixelToWorld(10, 200)
	for name, extra := range map[string][]Card{"PC00i00j": pcOld, "PCii_jj": pcCasa, "CROTA2": crota} {
		w, err := NewWCS(wcsHeader(t, append(append([]Card{}, common...), extra...)...))
		if err != nil {
			t.Fatal(err)
		}
		ra, dec, _ := w.PixelToWorld(10, 200)
		if separation(ra, dec, ra0, dec0) > 1e-10 {
			t.Errorf("%s: (%v, %v), want (%v, %v)", name, ra, dec, ra0, dec0)
		}
	}
	// Identity PC: pixel scales are |CDELT|; reference pixel maps to CRVAL.
	w, err := NewWCS(wcsHeader(t, common...))
	if err != nil {
		t.Fatal(err)
	}
	if s1, s2 := w.PixelScales(); math.Abs(s1-1.0/1800) > 1e-15 || math.Abs(s2-1.0/1800) > 1e-15 {
		t.Errorf("PixelScales = %v, %v", s1, s2)
	}
	if ra, dec, _ := w.PixelToWorld(129, 129); math.Abs(ra-150) > 1e-12 || math.Abs(dec+30) > 1e-12 {
		t.Errorf("reference pixel -> (%v, %v)", ra, dec)
	}
}

func TestWCSSwappedAxesAndLinearFallback(t *testing.T) {
	swapped := wcsHeader(t,
		Card{Key: "CTYPE1", Value: "DEC--SIN"}, Card{Key: "CTYPE2", Value: "RA---SIN"},
		Card{Key: "CRVAL1", Value: -30.0}, Card{Key: "CRVAL2", Value: 150.0},
		Card{Key: "CRPIX1", Value: 1.0}, Card{Key: "CRPIX2", Value: 1.0},
		Card{Key: "CDELT1", Value: 0.01}, Card{Key: "CDELT2", Value: -0.01},
	)
	w, err := NewWCS(swapped)
	if err != nil {
		t.Fatal(err)
	}
	ra, dec, _ := w.PixelToWorld(11, 1) // +0.1 deg along declination
	if math.Abs(ra-150) > 1e-9 || math.Abs(dec-(-29.9)) > 1e-6 {
		t.Errorf("swapped axes: (%v, %v), want (150, -29.9)", ra, dec)
	}

	car := wcsHeader(t,
		Card{Key: "CTYPE1", Value: "RA---CAR"}, Card{Key: "CTYPE2", Value: "DEC--CAR"},
		Card{Key: "CRVAL1", Value: 0.5}, Card{Key: "CRVAL2", Value: 10.0},
		Card{Key: "CRPIX1", Value: 1.0}, Card{Key: "CRPIX2", Value: 1.0},
		Card{Key: "CDELT1", Value: -0.1}, Card{Key: "CDELT2", Value: 0.1},
	)
	w, err = NewWCS(car)
	if err != nil {
		t.Fatal(err)
	}
	if w.Projection != "linear" {
		t.Fatalf("CAR: Projection = %q, want linear", w.Projection)
	}
	ra, dec, _ = w.PixelToWorld(11, 3)
	if math.Abs(ra-359.5) > 1e-9 || math.Abs(dec-10.2) > 1e-9 {
		t.Errorf("linear: (%v, %v), want (359.5, 10.2)", ra, dec)
	}
}

func TestSlantSINMatchesNCP(t *testing.T) {
	// NCP is SIN with ξ = 0, η = cot δ0; its forward projection is
	// x = cos δ sin Δα, y = (cos δ0 - cos δ cos Δα) / sin δ0.
	ra0, dec0 := 40.0, 50.0
	h := wcsHeader(t,
		Card{Key: "CTYPE1", Value: "RA---SIN"}, Card{Key: "CTYPE2", Value: "DEC--SIN"},
		Card{Key: "CRVAL1", Value: ra0}, Card{Key: "CRVAL2", Value: dec0},
		Card{Key: "CRPIX1", Value: 0.0}, Card{Key: "CRPIX2", Value: 0.0},
		Card{Key: "CDELT1", Value: -1.0}, Card{Key: "CDELT2", Value: 1.0},
		Card{Key: "PV2_1", Value: 0.0}, Card{Key: "PV2_2", Value: 1 / math.Tan(dec0*deg)},
	)
	w, err := NewWCS(h)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range [][2]float64{{41, 51}, {38, 49.5}, {40, 52}} {
		a, d, a0, d0 := p[0]*deg, p[1]*deg, ra0*deg, dec0*deg
		x := math.Cos(d) * math.Sin(a-a0) / deg
		y := (math.Cos(d0) - math.Cos(d)*math.Cos(a-a0)) / math.Sin(d0) / deg
		ra, dec, err := w.PixelToWorld(-x, y)
		if err != nil {
			t.Fatal(err)
		}
		if separation(ra, dec, p[0], p[1]) > 1e-9 {
			t.Errorf("NCP %v -> (%v, %v)", p, ra, dec)
		}
	}
}

func TestNewWCSErrorsNameTheKeyword(t *testing.T) {
	full := map[string]any{
		"CTYPE1": "RA---SIN", "CTYPE2": "DEC--SIN", "CRVAL1": 1.0, "CRVAL2": 2.0,
		"CRPIX1": 1.0, "CRPIX2": 1.0, "CDELT1": -0.1, "CDELT2": 0.1,
	}
	for _, drop := range []string{"CTYPE1", "CTYPE2", "CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2", "CDELT1", "CDELT2"} {
		var cards []Card
		for _, k := range []string{"CTYPE1", "CTYPE2", "CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2", "CDELT1", "CDELT2"} {
			if k != drop {
				cards = append(cards, Card{Key: k, Value: full[k]})
			}
		}
		_, err := NewWCS(wcsHeader(t, cards...))
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(drop)) {
			t.Errorf("without %s: err = %v", drop, err)
		}
	}
	_, err := NewWCS(wcsHeader(t, Card{Key: "CTYPE1", Value: "GLON-SIN"}, Card{Key: "CTYPE2", Value: "GLAT-SIN"}))
	if err == nil {
		t.Error("galactic axes: want an error")
	}
}
