package selavy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/piperun/piperun/internal/vastdata"
)

// withValue returns the text catalogue row with column col set to v.
func withValue(col, v string) string {
	names := strings.Fields(strings.TrimPrefix(strings.SplitN(textHeader, "\n", 2)[0], "#"))
	fields := strings.Fields(textRow)
	for i, n := range names {
		if n == col {
			fields[i] = v
		}
	}
	return "  " + strings.Join(fields, " ")
}

// catalogueFiles writes the row (with col = v) as the second data row of
// a text, a CSV and a VOTable catalogue, and returns their paths with the
// line each reader should name.
func catalogueFiles(t *testing.T, col, v string) map[string]int {
	t.Helper()
	dir := t.TempDir()
	names := strings.Fields(strings.TrimPrefix(strings.SplitN(textHeader, "\n", 2)[0], "#"))
	good := strings.Fields(textRow)
	bad := strings.Fields(withValue(col, v))
	second := func(fs []string) []string {
		out := append([]string(nil), fs...)
		out[1] = "comp_1b"
		return out
	}
	bad = second(bad)

	txt := filepath.Join(dir, "epoch02.selavy.components.txt")
	writeFile(t, txt, textHeader+strings.Join(good, " ")+"\n"+strings.Join(bad, " ")+"\n")

	csvPath := filepath.Join(dir, "epoch02.selavy.components.csv")
	writeFile(t, csvPath, strings.Join(names[:len(names)-1], ",")+"\n"+strings.Join(good, ",")+"\n"+strings.Join(bad, ",")+"\n")

	var x strings.Builder
	x.WriteString("<?xml version=\"1.0\"?>\n<VOTABLE><RESOURCE><TABLE>\n")
	for _, n := range names[:len(names)-1] {
		x.WriteString(`<FIELD name="` + n + `"/>` + "\n")
	}
	x.WriteString("<DATA><TABLEDATA>\n")
	for _, row := range [][]string{good, bad} {
		x.WriteString("<TR><TD>" + strings.Join(row, "</TD><TD>") + "</TD></TR>\n")
	}
	x.WriteString("</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>\n")
	xml := filepath.Join(dir, "epoch02.selavy.components.xml")
	writeFile(t, xml, x.String())
	// text: 2 header lines, good row 3, bad row 4; CSV: header 1, bad row
	// 3; VOTable: 3 lines, then one line per FIELD, TABLEDATA, good TR.
	return map[string]int{txt: 4, csvPath: 3, xml: 3 + len(names) - 1 + 2}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestNumbersAreCheckedForWhatTheirColumnCanHold(t *testing.T) {
	tests := []struct {
		col, v, rule string
	}{
		{"ra_deg_cont", "NaN", "must be a finite number"},
		{"ra_deg_cont", "nan", "must be a finite number"},
		{"ra_deg_cont", "Inf", "must be a finite number"},
		{"ra_deg_cont", "-Infinity", "must be a finite number"},
		{"ra_deg_cont", "1e308", "must be within [0, 360]"},
		{"ra_deg_cont", "1e400", "must be a finite number"},
		{"ra_deg_cont", "-0.5", "must be within [0, 360]"},
		{"ra_deg_cont", "360.000001", "must be within [0, 360]"},
		{"dec_deg_cont", "200", "must be within [-90, 90]"},
		{"dec_deg_cont", "-90.5", "must be within [-90, 90]"},
		{"dec_deg_cont", "NaN", "must be a finite number"},
		{"flux_peak", "inf", "must be a finite number"},
		{"flux_int", "NaN", "must be a finite number"},
		{"flux_int_err", "-0.1", "must not be negative"},
		{"flux_peak_err", "NaN", "must be a finite number"},
		{"ra_err", "-1", "must not be negative"},
		{"dec_err", "+Inf", "must be a finite number"},
		{"maj_axis", "-12", "must not be negative"},
		{"min_axis_err", "-1e-3", "must not be negative"},
		{"pos_ang", "NaN", "must be a finite number"},
		{"maj_axis_deconv", "-3", "must not be negative"},
		{"chi_squared_fit", "-1", "must not be negative"},
		{"spectral_index", "Inf", "must be a finite number"},
		{"rms_image", "-0.25", "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.col+"="+tt.v, func(t *testing.T) {
			for path, line := range catalogueFiles(t, tt.col, tt.v) {
				_, err := ReadFile(context.Background(), path)
				var se *Error
				if !errors.Is(err, ErrInvalidValue) || !errors.As(err, &se) {
					t.Fatalf("%s: err = %v, want ErrInvalidValue", filepath.Ext(path), err)
				}
				if se.File != path || se.Line != line || se.Column != tt.col {
					t.Errorf("%s: error at line %d column %q, want line %d column %s", filepath.Ext(path), se.Line, se.Column, line, tt.col)
				}
				want := "read selavy catalogue " + path + ": line " + strconv.Itoa(line) + ": " + tt.col + " = " + tt.v + ": " + tt.rule
				if err.Error() != want {
					t.Errorf("%s: message\n %s\nwant\n %s", filepath.Ext(path), err, want)
				}
			}
		})
	}
}

func TestValuesRealCataloguesHoldAreAccepted(t *testing.T) {
	// Zero errors, sizes and rms (VAST floors, drops or fills them),
	// negative fluxes and angles, -99 spectral indexes, RA printed as 360
	// and the poles are all things Selavy writes.
	tests := []struct{ col, v string }{
		{"flux_int_err", "0"}, {"flux_peak_err", "0"}, {"ra_err", "0"}, {"dec_err", "0"},
		{"maj_axis", "0"}, {"min_axis_deconv", "0"}, {"rms_image", "0"},
		{"flux_peak", "-1.5"}, {"flux_int", "-2"}, {"pos_ang", "-45"}, {"pos_ang_deconv", "-86"},
		{"spectral_index", "-99"}, {"ra_deg_cont", "0"}, {"ra_deg_cont", "360.000000"}, {"ra_deg_cont", "-0.000000"},
		{"dec_deg_cont", "-90"}, {"dec_deg_cont", "90"}, {"flux_int", "1e-320"},
	}
	for _, tt := range tests {
		for path := range catalogueFiles(t, tt.col, tt.v) {
			cs, err := ReadFile(context.Background(), path)
			if err != nil || len(cs) != 2 {
				t.Errorf("%s = %s in %s: %d components, %v", tt.col, tt.v, filepath.Ext(path), len(cs), err)
			}
		}
	}
}

func TestRealCataloguesPassTheChecks(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join(vastdata.VASTDir(t), "data"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		name := e.Name()
		if !strings.Contains(name, ".selavy.") || strings.Contains(name, "invalid") {
			continue
		}
		cs, err := ReadFile(context.Background(), vastdata.VASTFile(t, "data", name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
		for _, c := range cs {
			checkComponent(t, c)
		}
		n++
	}
	if n < 6 {
		t.Errorf("read %d real catalogues, want the 6 of the test data", n)
	}
}
