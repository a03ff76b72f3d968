package runconfig

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"testing"
)

var hexDigest = regexp.MustCompile(`^[0-9a-f]{64}$`)

// FuzzParse checks that Parse never panics, fails only with a
// *ValidationError that says something, and that whatever it accepts keeps
// the invariants the domain relies on and survives a round trip through
// render.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		example, minimal, epochExample, Template("fuzz"),
		"",
		"inputs:\n  image: [a.fits\n",
		"inputs: *a\n",
		"- a\n- b\n",
		"inputs:\n  image: {\"01\": [a], \"02\": [b]}\n  selavy: {\"02\": [b], \"01\": [a]}\n  noise: [x]\n",
		"inputs:\n  image: [../a, /b, '', a/../../c]\n  selavy: [a]\n  noise: [a, b, c, d]\n",
		"a: &a [*a]\n",
		"source_association:\n  radius: .nan\n  method: !!binary aGk=\n",
		minimal + "---\n" + minimal,
		"inputs:\n  image: [a]\n  selavy: [b]\n  noise: [c]\n  <<: {background: [d]}\n",
	} {
		f.Add([]byte(s))
	}
	if data, err := os.ReadFile(filepath.Join("..", "..", "shared", "testdata", "vast", "expected", "basic-association", "config.yaml")); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		c, err := Parse(text)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error %v is a %T, not a *ValidationError", err, err)
			}
			if len(ve.Problems) == 0 {
				t.Fatal("ValidationError without problems")
			}
			for _, p := range ve.Problems {
				if p.Message == "" {
					t.Fatalf("problem %+v has no message", p)
				}
			}
			return
		}
		in := c.Inputs
		n := len(in.Images)
		if n == 0 || len(in.Selavy) != n || len(in.Noise) != n || (in.Background != nil && len(in.Background) != n) || (in.Epochs != nil && len(in.Epochs) != n) {
			t.Fatalf("inconsistent inputs accepted: %+v", in)
		}
		seen := make(map[string]bool)
		for _, list := range [][]string{in.Images, in.Selavy, in.Noise, in.Background} {
			for _, p := range list {
				if clean, why := cleanPath(p); why != "" || clean != p {
					t.Fatalf("path %q accepted but not clean and local (%s)", p, why)
				}
			}
		}
		for _, p := range in.Images {
			if seen[p] {
				t.Fatalf("duplicate image %q accepted", p)
			}
			seen[p] = true
		}
		d := c.Domain()
		if !hexDigest.MatchString(d.SettingsDigest) || d.YAML != string(text) {
			t.Fatalf("bad Domain(): digest %q", d.SettingsDigest)
		}
		back, err := Parse([]byte(render(c, c.Run.Path)))
		if err != nil {
			t.Fatalf("rendered configuration does not parse: %v", err)
		}
		if !reflect.DeepEqual(back.Inputs, c.Inputs) || back.Run != c.Run || back.SettingsDigest() != d.SettingsDigest {
			t.Fatalf("round trip changed the configuration:\n%+v\n%+v", c, back)
		}
	})
}
