package runconfig

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/piperun/piperun/domain"
)

func TestTemplate(t *testing.T) {
	tmpl := Template("my run: first")
	_, err := Parse([]byte(tmpl))
	if err == nil {
		t.Fatal("Parse accepted the template without inputs")
	}
	want := []string{"inputs.image", "inputs.selavy", "inputs.noise"}
	if got := validationFields(t, err); !slices.Equal(got, want) {
		t.Errorf("problems with %q, want only the inputs %q\n%v", got, want, err)
	}

	// Fill it in as a user would, under each key.
	filled := edit(t, tmpl, "  image:\n", "  image:\n  - data/epoch01.fits\n  - data/epoch02.fits\n")
	filled = edit(t, filled, "  selavy:\n", "  selavy:\n  - data/epoch01.selavy.components.txt\n  - data/epoch02.selavy.components.txt\n")
	filled = edit(t, filled, "  noise:\n", "  noise:\n  - data/epoch01.noiseMap.fits\n  - data/epoch02.noiseMap.fits\n")
	c := mustParse(t, filled)
	if got := settingsOf(c); !reflect.DeepEqual(got, vastDefaults) {
		t.Errorf("template settings = %+v\nwant VAST's defaults %+v", got, vastDefaults)
	}
	if c.Run.Path != "my run: first" {
		t.Errorf("run.path = %q", c.Run.Path)
	}
	if len(c.Inputs.Images) != 2 {
		t.Errorf("images = %q", c.Inputs.Images)
	}
}

func TestRenderRoundTrip(t *testing.T) {
	awkward := []string{"data/a.fits", "01", "true", "null", "~", "x: y.fits", "#hash.fits", "with space/é.fits", `quote"s.fits`, "'single'", "- dash", "[x]", "a\tb", "new\nline"}
	n := len(awkward)
	paths := func(suffix string) []string {
		out := make([]string, n)
		for i, p := range awkward {
			out[i] = p + suffix
		}
		return out
	}
	epochs := make([]string, n)
	for i := range epochs {
		epochs[i] = []string{"2024-01-02", "01", "b: c", "1.5"}[i%4]
	}
	tests := []struct {
		name string
		in   domain.Inputs
		// want is what Parse gives back; nil means in itself.
		want *domain.Inputs
	}{
		{"lists", domain.Inputs{Images: awkward, Selavy: paths(".txt"), Noise: paths(".noise")}, nil},
		{"with background", domain.Inputs{Images: awkward, Selavy: paths(".txt"), Noise: paths(".noise"), Background: paths(".bg")}, nil},
		{"epoch mode, grouped", domain.Inputs{
			Images: []string{"b1", "b2", "a1"}, Selavy: []string{"b1.t", "b2.t", "a1.t"}, Noise: []string{"b1.n", "b2.n", "a1.n"},
			Epochs: []string{"02", "02", "01"},
		}, nil},
		{"epoch mode, awkward names", domain.Inputs{Images: awkward, Selavy: paths(".txt"), Noise: paths(".noise"), Epochs: epochs}, &domain.Inputs{
			// Images of an epoch come together, epochs in order of
			// first appearance.
			Images: regroup(awkward, epochs, ""), Selavy: regroup(awkward, epochs, ".txt"), Noise: regroup(awkward, epochs, ".noise"),
			Epochs: regroupEpochs(epochs),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := Render(tt.in, "run")
			c, err := Parse([]byte(text))
			if err != nil {
				t.Fatalf("Parse(Render(...)): %v\n%s", err, text)
			}
			want := tt.in
			if tt.want != nil {
				want = *tt.want
			}
			if !reflect.DeepEqual(c.Inputs, want) {
				t.Errorf("inputs = %#v\nwant %#v\n%s", c.Inputs, want, text)
			}
			if got := settingsOf(c); !reflect.DeepEqual(got, vastDefaults) {
				t.Errorf("settings = %+v, want VAST's defaults", got)
			}
		})
	}
}

// TestRenderSettings renders non-default settings, as the fuzz test's
// round trip relies on.
func TestRenderSettings(t *testing.T) {
	c := mustParse(t, edit(t, edit(t, example, "radius: 10.0", "radius: 0.1"), "method: basic", "method: deruiter"))
	c.Measurements.FluxFractionalError = 1e-9
	c.SourceMonitoring.EdgeBufferScale = 123456789012
	back := mustParse(t, render(c, "x"))
	if got, want := settingsOf(back), settingsOf(c); !reflect.DeepEqual(got, want) {
		t.Errorf("settings after render = %+v\nwant %+v", got, want)
	}
}

func regroup(paths, epochs []string, suffix string) []string {
	var out []string
	for _, e := range regroupEpochsOrder(epochs) {
		for i, p := range paths {
			if epochs[i] == e {
				out = append(out, p+suffix)
			}
		}
	}
	return out
}

func regroupEpochs(epochs []string) []string {
	var out []string
	for _, e := range regroupEpochsOrder(epochs) {
		for _, x := range epochs {
			if x == e {
				out = append(out, e)
			}
		}
	}
	return out
}

func regroupEpochsOrder(epochs []string) []string {
	var order []string
	for _, e := range epochs {
		if !slices.Contains(order, e) {
			order = append(order, e)
		}
	}
	return order
}

func TestQuote(t *testing.T) {
	for _, s := range []string{"plain", "", " lead", "trail ", "01", "0x1F", "yes", "~", "a: b", "a #b", "\x00", "tab\there", "line\nbreak", "\u2028", "é", "!tag", "&anchor", "*alias", "%dir", "@at", "`tick", "{", "}", ",", "?", "|", ">"} {
		text := "run:\n  path: " + quote(s) + "\n" + minimal
		c, err := Parse([]byte(text))
		if err != nil {
			t.Errorf("quote(%q) = %s: %v", s, quote(s), err)
			continue
		}
		if c.Run.Path != s {
			t.Errorf("quote(%q) = %s reads back as %q", s, quote(s), c.Run.Path)
		}
	}
	if strings.Contains(quote("plain"), `"`) {
		t.Errorf("quote(plain) = %s, want it unquoted", quote("plain"))
	}
}
