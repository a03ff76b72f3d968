package selavy

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/piperun/piperun/internal/vastdata"
)

// checkComponents holds for any read: an error is a *Error, and every
// component accepted is one the rules allow.
func checkComponents(t *testing.T, cs []Component, err error) {
	if err != nil {
		if _, ok := err.(*Error); !ok {
			t.Fatalf("error %v (%T) is not a *Error", err, err)
		}
		return
	}
	if cs == nil {
		t.Fatal("nil slice on success; want an empty one")
	}
	seen := map[string]bool{}
	for _, c := range cs {
		if c.ComponentID == "" || c.IslandID == "" || seen[c.ComponentID] {
			t.Fatalf("bad component accepted: %+v", c)
		}
		seen[c.ComponentID] = true
		checkComponent(t, c)
	}
}

// checkComponent states the value rules independently of the readers.
func checkComponent(t *testing.T, c Component) {
	t.Helper()
	nums := map[string]float64{
		"ra_deg_cont": c.RADeg, "dec_deg_cont": c.DecDeg, "ra_err": c.RAErr, "dec_err": c.DecErr,
		"flux_peak": c.FluxPeak, "flux_peak_err": c.FluxPeakErr, "flux_int": c.FluxInt, "flux_int_err": c.FluxIntErr,
		"maj_axis": c.MajAxis, "min_axis": c.MinAxis, "pos_ang": c.PosAng,
		"maj_axis_err": c.MajAxisErr, "min_axis_err": c.MinAxisErr, "pos_ang_err": c.PosAngErr,
		"maj_axis_deconv": c.MajAxisDeconv, "min_axis_deconv": c.MinAxisDeconv, "pos_ang_deconv": c.PosAngDeconv,
		"chi_squared_fit": c.ChiSquaredFit, "spectral_index": c.SpectralIndex, "rms_image": c.RMSImage,
	}
	for name, v := range nums {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Fatalf("%s = %v accepted", name, v)
		}
	}
	if c.RADeg < 0 || c.RADeg > 360 || c.DecDeg < -90 || c.DecDeg > 90 {
		t.Fatalf("position (%v, %v) accepted", c.RADeg, c.DecDeg)
	}
	for _, name := range []string{"ra_err", "dec_err", "flux_peak_err", "flux_int_err", "maj_axis", "min_axis",
		"maj_axis_err", "min_axis_err", "pos_ang_err", "maj_axis_deconv", "min_axis_deconv", "chi_squared_fit", "rms_image"} {
		if nums[name] < 0 {
			t.Fatalf("negative %s = %v accepted", name, nums[name])
		}
	}
}

// addRealSeeds adds the real catalogues of the VAST test data with the
// given extension, when they are present.
func addRealSeeds(f *testing.F, ext string) {
	dir, err := vastdata.Find()
	if err != nil {
		return
	}
	paths, _ := filepath.Glob(filepath.Join(dir, "data", "*.selavy.components"+ext))
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(string(b))
		}
	}
}

func FuzzReadTxt(f *testing.F) {
	f.Add(textHeader)
	f.Add(textHeader + textRow + "\n")
	f.Add(textHeader + textRow + " with a comment\n" + strings.Replace(textRow, "comp_1a", "comp_1b", 1))
	f.Add("#island_idcomponent_id\n#--\n")
	f.Add(textRow)
	f.Add(textHeader + withValue("ra_deg_cont", "NaN"))
	f.Add(textHeader + withValue("dec_deg_cont", "200"))
	f.Add(textHeader + withValue("flux_int", "1e308"))
	addRealSeeds(f, ".txt")
	f.Fuzz(func(t *testing.T, in string) {
		cs, err := ReadText(strings.NewReader(in), "fuzz.txt")
		checkComponents(t, cs, err)
	})
}

func FuzzReadCSV(f *testing.F) {
	header := "id,island_id,component_id,component_name,ra_deg_cont,dec_deg_cont,ra_err,dec_err,flux_peak,flux_peak_err,flux_int,flux_int_err,maj_axis,min_axis,pos_ang,maj_axis_err,min_axis_err,pos_ang_err,maj_axis_deconv,min_axis_deconv,pos_ang_deconv,chi_squared_fit,spectral_index,spectral_index_from_tt,flag_c4,has_siblings,rms_image,comment\n"
	row := "1,isl_1,comp_1a,J0, 10.5,-20.25,0.1,0.2,5.0,0.5,6.0,0.6,12.0,10.0,  45.0,0.1,0.1,1.0,3.0,2.0,40.0,1.5,-0.7,,1,0, 0.25\n"
	f.Add(header)
	f.Add(header + row)
	f.Add(header + row + strings.Replace(row, "comp_1a", "\"comp,1b\"", 1))
	f.Add(header + strings.Replace(row, "-20.25", "-Inf", 1))
	f.Add("a,b\n1,2\n")
	addRealSeeds(f, ".csv")
	f.Fuzz(func(t *testing.T, in string) {
		cs, err := ReadCSV(strings.NewReader(in), "fuzz.csv")
		checkComponents(t, cs, err)
	})
}

func FuzzReadVOTable(f *testing.F) {
	f.Add(`<VOTABLE><RESOURCE><TABLE><FIELD name="island_id"/><DATA><TABLEDATA><TR><TD>1</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>`)
	f.Add(`<VOTABLE/>`)
	addRealSeeds(f, ".xml")
	f.Fuzz(func(t *testing.T, in string) {
		cs, err := ReadVOTable(strings.NewReader(in), "fuzz.xml")
		checkComponents(t, cs, err)
	})
}
