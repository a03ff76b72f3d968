package vastdata

import (
	"encoding/csv"
	"os"
	"testing"
)

// ReadCSV reads a CSV file of current VAST's outputs under the test data
// directory (e.g. ReadCSV(t, "expected", "current-vast", "basic-r15",
// "sources.csv")) as rows keyed by the header's column names, skipping or
// failing like VASTDir when it is missing.
func ReadCSV(t testing.TB, elem ...string) []map[string]string {
	t.Helper()
	return CSVRows(t, VASTFile(t, elem...))
}

// CSVRows reads the CSV file at path as rows keyed by the header's column
// names; a file that cannot be read, or has no header, fails the test.
func CSVRows(t testing.TB, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if len(recs) == 0 {
		t.Fatalf("%s is empty", path)
	}
	rows := make([]map[string]string, 0, len(recs)-1)
	for _, r := range recs[1:] {
		row := make(map[string]string, len(r))
		for i, name := range recs[0] {
			row[name] = r[i]
		}
		rows = append(rows, row)
	}
	return rows
}
