package selavy

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/piperun/piperun/internal/vastdata"
)

func readVAST(t *testing.T, name string) []Component {
	t.Helper()
	cs, err := ReadFile(context.Background(), vastdata.VASTFile(t, "data", name))
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func TestReadVASTEpochs(t *testing.T) {
	// Component counts are the data lines of each file (all lines but the
	// two header lines).
	for name, want := range map[string]int{
		"epoch01.selavy.components.txt": 4,
		"epoch02.selavy.components.txt": 7,
		"epoch03.selavy.components.txt": 4,
		"epoch04.selavy.components.txt": 5,
	} {
		cs := readVAST(t, name)
		if len(cs) != want {
			t.Errorf("%s: %d components, want %d", name, len(cs), want)
		}
	}
	cs := readVAST(t, "epoch01.selavy.components.txt")
	want := Component{
		IslandID: "island_1", ComponentID: "component_1a", ComponentName: "J095956-295840",
		RADeg: 149.983325, DecDeg: -29.977778, RAErr: 0, DecErr: 0,
		FluxPeak: 2002.257017, FluxPeakErr: 0.170448, FluxInt: 2001.231634, FluxIntErr: 0.381031,
		MajAxis: 15, MinAxis: 10, PosAng: 0.04, MajAxisErr: 0, MinAxisErr: 0, PosAngErr: 0.01,
		MajAxisDeconv: 0.14, MinAxisDeconv: 0, PosAngDeconv: 51.24,
		ChiSquaredFit: 95.309319, SpectralIndex: -99, SpectralIndexFromTT: true, FlagC4: false, HasSiblings: false,
		RMSImage: 0.936440,
	}
	if !reflect.DeepEqual(cs[0], want) {
		t.Errorf("first component\n got %+v\nwant %+v", cs[0], want)
	}
	e2 := readVAST(t, "epoch02.selavy.components.txt")
	if !e2[1].HasSiblings || !e2[2].HasSiblings || e2[1].IslandID != e2[2].IslandID {
		t.Errorf("epoch02 island_2 has two sibling components: %+v %+v", e2[1], e2[2])
	}
}

// The three epoch01 files describe the same four components, with two
// differences the data show: the CSV (a CASDA export) starts with a row
// from another field (SB11711_component_9b), and its header names the
// deconvolved-size columns in CASDA's order while the values follow the
// text file's order, so the CSV column labelled pos_ang_deconv holds the
// text file's maj_axis_deconv_err values.
func TestEpoch01FormatsAgree(t *testing.T) {
	txt := readVAST(t, "epoch01.selavy.components.txt")
	xml := readVAST(t, "epoch01.selavy.components.xml")
	csv := readVAST(t, "epoch01.selavy.components.csv")
	if !reflect.DeepEqual(txt, xml) {
		t.Errorf("txt and xml differ:\n%+v\n%+v", txt, xml)
	}
	if len(csv) != len(txt)+1 {
		t.Fatalf("csv has %d components, txt %d", len(csv), len(txt))
	}
	extra := csv[0]
	if extra.ComponentID != "SB11711_component_9b" || extra.IslandID != "SB11711_island_9" || math.Abs(extra.RADeg-335.722276) > 1e-9 {
		t.Errorf("csv first row %+v, want the SB11711 component at RA 335.72", extra)
	}
	if extra.SpectralIndexFromTT {
		t.Error("blank spectral_index_from_tt should read as false")
	}
	majDeconvErr := textColumn(t, "epoch01.selavy.components.txt", "maj_axis_deconv_err")
	for i, c := range csv[1:] {
		if c.PosAngDeconv != majDeconvErr[i] {
			t.Errorf("csv row %d pos_ang_deconv %v, want the text file's maj_axis_deconv_err %v", i+2, c.PosAngDeconv, majDeconvErr[i])
		}
		c.PosAngDeconv = txt[i].PosAngDeconv
		if !reflect.DeepEqual(c, txt[i]) {
			t.Errorf("csv row %d\n got %+v\nwant %+v", i+2, c, txt[i])
		}
	}
}

// textColumn reads one numeric column of a text catalogue by splitting
// lines, independently of ReadText.
func textColumn(t *testing.T, name, column string) []float64 {
	t.Helper()
	data, err := os.ReadFile(vastdata.VASTFile(t, "data", name))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	idx := -1
	for i, f := range strings.Fields(strings.TrimPrefix(lines[0], "#")) {
		if f == column {
			idx = i
		}
	}
	var out []float64
	for _, l := range lines[2:] {
		v, err := strconv.ParseFloat(strings.Fields(l)[idx], 64)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func TestInvalidCatalogueNamesFileAndColumns(t *testing.T) {
	path := vastdata.VASTFile(t, "data", "epoch-invalid.selavy.components.txt")
	_, err := ReadFile(context.Background(), path)
	var se *Error
	if !errors.As(err, &se) || !errors.Is(err, ErrMissingColumn) {
		t.Fatalf("err = %v, want a missing-column *Error", err)
	}
	if se.File != path || se.Line != 1 {
		t.Errorf("error at %s:%d, want %s:1", se.File, se.Line, path)
	}
	for _, col := range []string{"island_id", "flux_peak", "rms_image"} {
		if !strings.Contains(err.Error(), col) {
			t.Errorf("error %q does not name %s", err, col)
		}
	}
}

const textHeader = "# island_id component_id component_name ra_deg_cont dec_deg_cont ra_err dec_err flux_peak flux_peak_err flux_int flux_int_err maj_axis min_axis pos_ang maj_axis_err min_axis_err pos_ang_err maj_axis_deconv min_axis_deconv pos_ang_deconv chi_squared_fit spectral_index spectral_index_from_TT flag_c4 has_siblings rms_image comment\n" +
	"#  --  --  --  [deg] [deg] [arcsec] [arcsec] [mJy/beam] [mJy/beam] [mJy] [mJy] [arcsec] [arcsec] [deg] [arcsec] [arcsec] [deg] [arcsec] [arcsec] [deg] -- -- -- -- -- [mJy/beam]\n"

const textRow = "  isl_1 comp_1a J000000-000000 10.5 -20.25 0.1 0.2 5.0 0.5 6.0 0.6 12.0 10.0 45.0 0.1 0.1 1.0 3.0 2.0 40.0 1.5 -0.7 1 0 1 0.25"

func TestReadTextCases(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		n       int
		wantErr error
		line    int
		column  string
	}{
		{name: "header only", in: textHeader, n: 0},
		{name: "one row, empty comment", in: textHeader + textRow + "\n", n: 1},
		{name: "comment with words", in: textHeader + textRow + " a free comment\n", n: 1},
		{name: "blank lines", in: "\n" + textHeader + "\n" + textRow + "\n\n", n: 1},
		{name: "no units line", in: strings.SplitAfter(textHeader, "\n")[0] + textRow, n: 1},
		{name: "bad number", in: textHeader + strings.Replace(textRow, " 5.0 ", " five ", 1), wantErr: ErrBadValue, line: 3, column: "flux_peak"},
		{name: "bad flag", in: textHeader + strings.Replace(textRow, " 1 0 1 ", " 2 0 1 ", 1), wantErr: ErrBadValue, line: 3, column: "spectral_index_from_TT"},
		{name: "short row", in: textHeader + textRow[:40], wantErr: ErrBadValue, line: 3},
		{name: "duplicate", in: textHeader + textRow + "\n" + textRow, wantErr: ErrDuplicate, line: 4, column: "component_id"},
		{name: "no header", in: textRow, wantErr: ErrFormat, line: 1},
		{name: "empty file", in: "", wantErr: ErrFormat},
		{name: "missing flux_peak", in: strings.Replace(textHeader, " flux_peak ", " flux_pk ", 1) + textRow, wantErr: ErrMissingColumn, line: 1, column: "flux_peak"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, err := ReadText(strings.NewReader(tt.in), "cat.txt")
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if len(cs) != tt.n || cs == nil {
					t.Fatalf("%d components (nil=%v), want %d", len(cs), cs == nil, tt.n)
				}
				if tt.n > 0 && (cs[0].FluxPeak != 5 || cs[0].RMSImage != 0.25 || !cs[0].SpectralIndexFromTT || !cs[0].HasSiblings || cs[0].FlagC4) {
					t.Errorf("row read as %+v", cs[0])
				}
				return
			}
			var se *Error
			if !errors.Is(err, tt.wantErr) || !errors.As(err, &se) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if se.File != "cat.txt" || se.Line != tt.line || !strings.Contains(se.Column, tt.column) {
				t.Errorf("error at %s line %d column %q, want line %d column %q (%v)", se.File, se.Line, se.Column, tt.line, tt.column, err)
			}
			if !strings.HasPrefix(err.Error(), "read selavy catalogue cat.txt: ") {
				t.Errorf("message %q", err)
			}
		})
	}
}

func TestMissingColumnMessage(t *testing.T) {
	in := strings.Replace(textHeader, " flux_peak ", " ", 1) + textRow
	_, err := ReadText(strings.NewReader(in), "data/epoch-x.selavy.components.txt")
	want := "read selavy catalogue data/epoch-x.selavy.components.txt: line 1: missing column flux_peak"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
}

func TestReadCSVCases(t *testing.T) {
	header := "id,island_id,component_id,component_name,ra_deg_cont,dec_deg_cont,ra_err,dec_err,flux_peak,flux_peak_err,flux_int,flux_int_err,maj_axis,min_axis,pos_ang,maj_axis_err,min_axis_err,pos_ang_err,maj_axis_deconv,min_axis_deconv,pos_ang_deconv,chi_squared_fit,spectral_index,spectral_index_from_tt,flag_c4,has_siblings,rms_image,comment,quality_level\n"
	row := "1, isl_1 ,comp_1a,J0, 10.5,-20.25,0.1,0.2,5.0,0.5,6.0,0.6,12.0,10.0,  45.0,0.1,0.1,1.0,3.0,2.0,40.0,1.5,-0.7,,1,0, 0.25"
	tests := []struct {
		name    string
		in      string
		n       int
		wantErr error
		line    int
	}{
		{name: "header only", in: header, n: 0},
		{name: "short row without optional columns", in: header + row + "\n", n: 1},
		{name: "full row", in: header + row + ",a comment,GOOD\n", n: 1},
		{name: "too many fields", in: header + row + ",a,b,c\n", wantErr: ErrFormat, line: 2},
		{name: "bad value", in: header + strings.Replace(row, "5.0", "5.0.0", 1), wantErr: ErrBadValue, line: 2},
		{name: "bare quote", in: header + strings.Replace(row, "J0", "J\"0", 1), wantErr: ErrFormat, line: 2},
		{name: "missing column", in: strings.Replace(header, "rms_image", "rms", 1) + row, wantErr: ErrMissingColumn, line: 1},
		{name: "empty", in: "", wantErr: ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, err := ReadCSV(strings.NewReader(tt.in), "cat.csv")
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if len(cs) != tt.n || cs == nil {
					t.Fatalf("%d components, want %d", len(cs), tt.n)
				}
				if tt.n > 0 && (cs[0].IslandID != "isl_1" || cs[0].PosAng != 45 || cs[0].SpectralIndexFromTT || !cs[0].FlagC4) {
					t.Errorf("row read as %+v", cs[0])
				}
				return
			}
			var se *Error
			if !errors.Is(err, tt.wantErr) || !errors.As(err, &se) || se.Line != tt.line {
				t.Fatalf("err = %v, want %v on line %d", err, tt.wantErr, tt.line)
			}
		})
	}
}

func TestReadVOTableCases(t *testing.T) {
	var fields strings.Builder
	for _, c := range Columns() {
		fields.WriteString(`<FIELD name="` + c + `" datatype="char"/>`)
	}
	cells := strings.Fields("isl_1 comp_1a J0 10.5 -20.25 0.1 0.2 5.0 0.5 6.0 0.6 12.0 10.0 45.0 0.1 0.1 1.0 3.0 2.0 40.0 1.5 -0.7 T 0 1 0.25")
	tr := "<TR><TD>" + strings.Join(cells, "</TD><TD>") + "</TD></TR>"
	doc := func(body string) string {
		return `<?xml version="1.0"?><VOTABLE xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE><TABLE>` + body + `</TABLE>` +
			`<TABLE><FIELD name="other"/><DATA><TABLEDATA><TR><TD>x</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>`
	}
	tests := []struct {
		name    string
		in      string
		n       int
		wantErr error
	}{
		{name: "one row", in: doc(fields.String() + "<DATA><TABLEDATA>\n" + tr + "\n</TABLEDATA></DATA>"), n: 1},
		{name: "no data", in: doc(fields.String()), n: 0},
		{name: "empty tabledata", in: doc(fields.String() + "<DATA><TABLEDATA></TABLEDATA></DATA>"), n: 0},
		{name: "binary", in: doc(fields.String() + "<DATA><BINARY><STREAM>AAAA</STREAM></BINARY></DATA>"), wantErr: ErrFormat},
		{name: "missing field", in: doc(strings.Replace(fields.String(), `"flux_int"`, `"flux"`, 1)), wantErr: ErrMissingColumn},
		{name: "bad value", in: doc(fields.String() + "<DATA><TABLEDATA>\n\n" + strings.Replace(tr, "<TD>5.0</TD>", "<TD>x</TD>", 1) + "</TABLEDATA></DATA>"), wantErr: ErrBadValue},
		{name: "broken xml", in: `<VOTABLE><RESOURCE><TABLE>` + fields.String() + `<DATA><TABLEDATA><TR><TD>1</TR>`, wantErr: ErrFormat},
		{name: "no table", in: `<VOTABLE/>`, wantErr: ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, err := ReadVOTable(strings.NewReader(tt.in), "cat.xml")
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if len(cs) != tt.n {
					t.Fatalf("%d components, want %d", len(cs), tt.n)
				}
				if tt.n > 0 && (cs[0].FluxPeak != 5 || !cs[0].SpectralIndexFromTT) {
					t.Errorf("row read as %+v", cs[0])
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
	// The bad value's error gives the line of its TR.
	_, err := ReadVOTable(strings.NewReader(tests[5].in), "cat.xml")
	var se *Error
	if !errors.As(err, &se) || se.Line != 3 || se.Column != "flux_peak" {
		t.Errorf("bad value error %v: want line 3 column flux_peak", err)
	}
}

func TestFormatOf(t *testing.T) {
	for path, want := range map[string]Format{"a/b.selavy.components.txt": Text, "x.CSV": CSV, "x.xml": VOTable, "x.vot": VOTable} {
		if got, err := FormatOf(path); err != nil || got != want {
			t.Errorf("FormatOf(%s) = %v, %v", path, got, err)
		}
	}
	if _, err := FormatOf("x.fits"); !errors.Is(err, ErrFormat) {
		t.Errorf("FormatOf(x.fits) = %v", err)
	}
	dir := t.TempDir()
	if _, err := ReadFile(context.Background(), filepath.Join(dir, "absent.txt")); err == nil || !strings.Contains(err.Error(), "absent.txt") {
		t.Errorf("absent file: %v", err)
	}
}
