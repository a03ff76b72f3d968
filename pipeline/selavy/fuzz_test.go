package selavy

import (
	"strings"
	"testing"
)

// checkComponents holds for any successful read.
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
	}
}

func FuzzReadTxt(f *testing.F) {
	f.Add(textHeader)
	f.Add(textHeader + textRow + "\n")
	f.Add(textHeader + textRow + " with a comment\n" + strings.Replace(textRow, "comp_1a", "comp_1b", 1))
	f.Add("#island_idcomponent_id\n#--\n")
	f.Add(textRow)
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
	f.Add("a,b\n1,2\n")
	f.Fuzz(func(t *testing.T, in string) {
		cs, err := ReadCSV(strings.NewReader(in), "fuzz.csv")
		checkComponents(t, cs, err)
	})
}

func FuzzReadVOTable(f *testing.F) {
	f.Add(`<VOTABLE><RESOURCE><TABLE><FIELD name="island_id"/><DATA><TABLEDATA><TR><TD>1</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>`)
	f.Add(`<VOTABLE/>`)
	f.Fuzz(func(t *testing.T, in string) {
		cs, err := ReadVOTable(strings.NewReader(in), "fuzz.xml")
		checkComponents(t, cs, err)
	})
}
