package synth

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/piperun/piperun/internal/vastdata"
)

// columnEnds checks selavy's fixed-width layout: in the line of names and
// the line of units, each entry ends in the column where its values end in
// every row.
func columnEnds(t *testing.T, cat []byte) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(cat))
	sc.Buffer(nil, 1<<20)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) < 3 || !strings.HasPrefix(lines[0], "#") || !strings.HasPrefix(lines[1], "#") {
		t.Fatalf("want two '#' header lines and rows, got %d lines", len(lines))
	}
	names := tokenEnds(lines[0])
	for _, row := range lines[2:] {
		values := tokenEnds(row)
		for i, v := range values {
			if i >= len(names) {
				break // selavy's trailing comment column is empty
			}
			if v.end != names[i].end {
				t.Fatalf("column %q: its name ends at byte %d, its value %q at %d in row %q",
					names[i].text, names[i].end, v.text, v.end, row)
			}
		}
	}
	// Every unit that is given ends with its column.
	ends := map[int]bool{}
	for _, n := range names {
		ends[n.end] = true
	}
	for _, u := range tokenEnds(lines[1]) {
		if u.text != "#" && !ends[u.end] {
			t.Fatalf("unit %q ends at byte %d, where no column ends", u.text, u.end)
		}
	}
}

type token struct {
	text string
	end  int
}

func tokenEnds(line string) []token {
	var out []token
	for i := 0; i < len(line); {
		for i < len(line) && line[i] == ' ' {
			i++
		}
		j := i
		for j < len(line) && line[j] != ' ' {
			j++
		}
		if j > i {
			t := line[i:j]
			if t == "#" { // a '#' standing alone before a unit line's first entry
				i = j
				continue
			}
			out = append(out, token{strings.TrimPrefix(t, "#"), j})
		}
		i = j
	}
	return out
}

func TestTextCatalogueHasSelavysLayout(t *testing.T) {
	t.Run("selavy", func(t *testing.T) {
		// The rule itself, on a catalogue written by selavy.
		cat, err := os.ReadFile(vastdata.VASTFile(t, "data", "epoch01.selavy.components.txt"))
		if err != nil {
			t.Fatal(err)
		}
		columnEnds(t, cat)
	})
	t.Run("synthetic", func(t *testing.T) {
		dir := t.TempDir()
		sv, err := Generate(dir, Options{Images: 1, Sources: 50, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		cat, err := os.ReadFile(filepath.Join(dir, sv.Images[0].Selavy))
		if err != nil {
			t.Fatal(err)
		}
		columnEnds(t, cat)
	})
}
