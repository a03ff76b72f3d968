package synth

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/piperun/piperun/pipeline/fits"
	"github.com/piperun/piperun/pipeline/selavy"
)

func TestGenerateReadsBack(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Images: 5, Sources: 200, Seed: 7, CSV: true, VariableFraction: 0.2, NewFraction: 0.25}
	sv, err := Generate(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(sv.Images) != 5 || len(sv.Sources) != 200 {
		t.Fatalf("%d images, %d sources", len(sv.Images), len(sv.Sources))
	}
	var nVariable, nNew int
	for _, s := range sv.Sources {
		if s.Variable {
			nVariable++
		}
		if s.FirstEpoch > 0 {
			nNew++
		}
	}
	// 200 draws at 20% and 25%: well away from none and all.
	if nVariable < 20 || nVariable > 60 || nNew < 25 || nNew > 75 {
		t.Errorf("%d variable and %d new sources of 200", nVariable, nNew)
	}
	for e, im := range sv.Images {
		want := 0
		for _, s := range sv.Sources {
			if s.FirstEpoch <= e {
				want++
			}
		}
		if im.Components != want {
			t.Errorf("image %d: Components = %d, want %d", e, im.Components, want)
		}
		txt, err := selavy.ReadFile(context.Background(), filepath.Join(dir, im.Selavy))
		if err != nil {
			t.Fatal(err)
		}
		csv, err := selavy.ReadFile(context.Background(), filepath.Join(dir, im.SelavyCSV))
		if err != nil {
			t.Fatal(err)
		}
		if len(txt) != want || !reflect.DeepEqual(txt, csv) {
			t.Fatalf("image %d: %d txt components (want %d); csv equal: %v", e, len(txt), want, reflect.DeepEqual(txt, csv))
		}
		checkPositions(t, sv, e, txt, opts)

		info, err := fits.ReadImageInfo(context.Background(), filepath.Join(dir, im.Image))
		if err != nil {
			t.Fatal(err)
		}
		if want := time.Date(2020, 8, 3+e, 4, 33, 55, 479e6, time.UTC); !info.DateTime.Equal(want) || !im.DateTime.Equal(want) {
			t.Errorf("image %d DATE-OBS %v (%v), want %v", e, info.DateTime, im.DateTime, want)
		}
		if info.FrequencyMHz != 888 || info.BeamMajDeg*3600 != BeamMajArcsec || info.Projection != "SIN" {
			t.Errorf("image %d info %+v", e, info)
		}
		if d := math.Hypot((info.RADeg-150)*math.Cos(30*math.Pi/180), info.DecDeg+30); d > 2*info.PixelScale2Deg {
			t.Errorf("image centre (%v, %v) is %v deg from the field centre", info.RADeg, info.DecDeg, d)
		}
		for _, m := range []string{im.Noise, im.Background} {
			_, st, err := fits.ReadPixelStats(context.Background(), filepath.Join(dir, m))
			if err != nil {
				t.Fatal(err)
			}
			if st.N == 0 {
				t.Errorf("%s has no valid pixels", m)
			}
		}
	}
	in := sv.Inputs()
	if len(in.Images) != 5 || in.Selavy[2] != "epoch03.selavy.components.txt" || in.Noise[0] != "epoch01.noiseMap.fits" || in.Background[4] != "epoch05.meanMap.fits" {
		t.Errorf("Inputs = %+v", in)
	}
}

// checkPositions matches each component to its source: within a few
// jitter sigmas, and fluxes follow the truth.
func checkPositions(t *testing.T, sv Survey, e int, cs []selavy.Component, o Options) {
	t.Helper()
	for _, c := range cs {
		var id int
		if _, err := fmt.Sscanf(c.ComponentID, "component_%da", &id); err != nil {
			t.Fatalf("component id %q: %v", c.ComponentID, err)
		}
		s := sv.Sources[id-1]
		if e < s.FirstEpoch {
			t.Fatalf("source %d in epoch %d before its first epoch %d", id-1, e, s.FirstEpoch)
		}
		dRA := (c.RADeg - s.RA) * math.Cos(s.Dec*math.Pi/180) * 3600
		dDec := (c.DecDeg - s.Dec) * 3600
		if math.Hypot(dRA, dDec) > 6*0.5 {
			t.Errorf("epoch %d source %d: component %.2f\" from the truth", e, id-1, math.Hypot(dRA, dDec))
		}
		if math.Abs(c.FluxPeak-s.FluxMJy[e]) > 6*0.25*1.3 {
			t.Errorf("epoch %d source %d: peak %v, truth %v", e, id-1, c.FluxPeak, s.FluxMJy[e])
		}
	}
}

func TestGenerateIsDeterministic(t *testing.T) {
	opts := Options{Images: 3, Sources: 50, Seed: 42, CSV: true}
	a, b := t.TempDir(), t.TempDir()
	if _, err := Generate(a, opts); err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(b, opts); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(a)
	if len(entries) != 3*5 {
		t.Fatalf("%d files, want 15", len(entries))
	}
	for _, e := range entries {
		x, _ := os.ReadFile(filepath.Join(a, e.Name()))
		y, _ := os.ReadFile(filepath.Join(b, e.Name()))
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between two runs with the same seed", e.Name())
		}
	}
	c := t.TempDir()
	opts.Seed = 43
	if _, err := Generate(c, opts); err != nil {
		t.Fatal(err)
	}
	x, _ := os.ReadFile(filepath.Join(a, "epoch01.selavy.components.txt"))
	y, _ := os.ReadFile(filepath.Join(c, "epoch01.selavy.components.txt"))
	if bytes.Equal(x, y) {
		t.Error("a different seed gave the same catalogue")
	}
}

func TestGenerateOptions(t *testing.T) {
	if _, err := Generate(t.TempDir(), Options{Images: -1}); err == nil {
		t.Error("negative images: want an error")
	}
	if _, err := Generate(t.TempDir(), Options{Prefix: "../x"}); err == nil {
		t.Error("prefix with a path: want an error")
	}
	sv, err := Generate(t.TempDir(), Options{Images: 120, Sources: 1, Prefix: "img", NewFraction: -1})
	if err != nil {
		t.Fatal(err)
	}
	if sv.Images[0].Image != "img001.fits" || sv.Images[119].Image != "img120.fits" {
		t.Errorf("names %s .. %s", sv.Images[0].Image, sv.Images[119].Image)
	}
	if sv.Sources[0].FirstEpoch != 0 {
		t.Error("NewFraction < 0 still made a new source")
	}
}

func BenchmarkGenerate100x10000(b *testing.B) {
	for b.Loop() {
		if _, err := Generate(b.TempDir(), Options{Images: 100, Sources: 10000, Seed: 1}); err != nil {
			b.Fatal(err)
		}
	}
}
