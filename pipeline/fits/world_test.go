package fits

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

func TestWorldToPixelRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, proj := range []string{"SIN", "TAN", "ARC", "XYZ"} {
		for _, centre := range [][2]float64{{150, -30}, {0.1, 0}, {359.9, 60}, {10, -89}} {
			for _, swap := range []bool{false, true} {
				const cdelt = 1.0 / 1800
				rot := 0.3
				cd := [2][2]float64{{-cdelt * math.Cos(rot), cdelt * math.Sin(rot)}, {cdelt * math.Sin(rot), cdelt * math.Cos(rot)}}
				c1, c2 := "RA---"+proj, "DEC--"+proj
				v1, v2 := centre[0], centre[1]
				if swap {
					c1, c2, v1, v2 = c2, c1, v2, v1
				}
				cards := []Card{
					{Key: "CTYPE1", Value: c1}, {Key: "CTYPE2", Value: c2},
					{Key: "CRVAL1", Value: v1}, {Key: "CRVAL2", Value: v2},
					{Key: "CRPIX1", Value: 100.5}, {Key: "CRPIX2", Value: 80.0},
					{Key: "CD1_1", Value: cd[0][0]}, {Key: "CD1_2", Value: cd[0][1]},
					{Key: "CD2_1", Value: cd[1][0]}, {Key: "CD2_2", Value: cd[1][1]},
				}
				if proj == "SIN" && !swap {
					cards = append(cards, Card{Key: "PV2_1", Value: 0.01}, Card{Key: "PV2_2", Value: -0.02})
				}
				w, err := NewWCS(wcsHeader(t, cards...))
				if err != nil {
					t.Fatal(err)
				}
				for range 200 {
					p1, p2 := 1+4000*rng.Float64(), 1+4000*rng.Float64()
					ra, dec, err := w.PixelToWorld(p1, p2)
					if err != nil {
						t.Fatalf("%s %v: %v", proj, centre, err)
					}
					q1, q2, err := w.WorldToPixel(ra, dec)
					if err != nil {
						t.Fatalf("%s %v: world (%g, %g): %v", proj, centre, ra, dec, err)
					}
					if math.Abs(q1-p1) > 1e-6 || math.Abs(q2-p2) > 1e-6 {
						t.Fatalf("%s %v swap %v: pixel (%g, %g) -> (%g, %g) -> (%g, %g)", proj, centre, swap, p1, p2, ra, dec, q1, q2)
					}
				}
			}
		}
	}
}

func TestWorldToPixelRefusesTheFarHemisphere(t *testing.T) {
	for _, proj := range []string{"SIN", "TAN"} {
		w, err := NewWCS(wcsHeader(t,
			Card{Key: "CTYPE1", Value: "RA---" + proj}, Card{Key: "CTYPE2", Value: "DEC--" + proj},
			Card{Key: "CRVAL1", Value: 150.0}, Card{Key: "CRVAL2", Value: -30.0},
			Card{Key: "CRPIX1", Value: 129.0}, Card{Key: "CRPIX2", Value: 129.0},
			Card{Key: "CDELT1", Value: -1.0 / 1800}, Card{Key: "CDELT2", Value: 1.0 / 1800},
		))
		if err != nil {
			t.Fatal(err)
		}
		for _, pos := range [][2]float64{{330, 30}, {math.NaN(), 0}, {0, math.Inf(1)}} {
			if _, _, err := w.WorldToPixel(pos[0], pos[1]); !errors.Is(err, errOutsideProjection) {
				t.Errorf("%s: (%g, %g): got %v, want outside the projection", proj, pos[0], pos[1], err)
			}
		}
	}
}

func TestCelestialFrameMatchesAstropy(t *testing.T) {
	// astropy 5.2: SkyCoord(ra, dec, unit="deg").transform_to(FK5(equinox="J2000")).
	want := []struct{ ra, dec, fra, fdec float64 }{
		{150.020523, -29.977776, 150.020531394496, -29.977780951746},
		{10, 80, 10.000039723807, 80.000001529484},
		{359.99, -5, 359.990005877532, -4.999997471258},
	}
	f, err := ReadCelestialFrame(wcsHeader(t, Card{Key: "RADESYS", Value: "FK5"}, Card{Key: "EQUINOX", Value: 2000.0}))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range want {
		ra, dec := f.FromICRS(c.ra, c.dec)
		if math.Abs(ra-c.fra) > 1e-11 || math.Abs(dec-c.fdec) > 1e-11 {
			t.Errorf("FK5 of (%g, %g) = (%.12f, %.12f), astropy (%.12f, %.12f)", c.ra, c.dec, ra, dec, c.fra, c.fdec)
		}
	}
	for _, tc := range []struct {
		cards []Card
		name  string
	}{
		{nil, "ICRS"},
		{[]Card{{Key: "EQUINOX", Value: 2000.0}}, "FK5"},
		{[]Card{{Key: "RADESYS", Value: "ICRS"}}, "ICRS"},
		{[]Card{{Key: "EQUINOX", Value: 1950.0}}, ""},
		{[]Card{{Key: "RADESYS", Value: "FK5"}, {Key: "EQUINOX", Value: 1975.0}}, ""},
		{[]Card{{Key: "RADESYS", Value: "GAPPT"}}, ""},
	} {
		f, err := ReadCelestialFrame(wcsHeader(t, tc.cards...))
		if tc.name == "" {
			if !errors.Is(err, ErrBadValue) {
				t.Errorf("%v: got frame %q, %v; want refused", tc.cards, f.Name, err)
			}
			continue
		}
		if err != nil || f.Name != tc.name {
			t.Errorf("%v: got %q, %v; want %s", tc.cards, f.Name, err, tc.name)
		}
	}
	icrs, _ := ReadCelestialFrame(wcsHeader(t))
	if ra, dec := icrs.FromICRS(12.5, -7.25); ra != 12.5 || dec != -7.25 {
		t.Errorf("ICRS changed the position: (%g, %g)", ra, dec)
	}
}
