package runconfig

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"testing"
)

// TestSettingsDigestCanonicalForm pins the canonical encoding: digests are
// stored in events, so a change here would stop existing runs from adding
// images.
func TestSettingsDigestCanonicalForm(t *testing.T) {
	canonical := `{"measurements":{"condon_errors":true,"dec_uncertainty":1,"flux_fractional_error":0,"ra_uncertainty":1,"selavy_local_rms_fill_value":0.2,"source_finder":"selavy","write_arrow_files":false},` +
		`"new_sources":{"min_sigma":5},` +
		`"source_association":{"deruiter_beamwidth_limit":1.5,"deruiter_radius":5.68,"epoch_duplicate_radius":2.5,"method":"basic","parallel":false,"radius":10},` +
		`"source_monitoring":{"allow_nan":false,"cluster_threshold":3,"edge_buffer_scale":1.2,"min_sigma":3,"monitor":false},` +
		`"variability":{"source_aggregate_pair_metrics_min_abs_vs":4.3}}`
	sum := sha256.Sum256([]byte(canonical))
	want := hex.EncodeToString(sum[:])
	if got := mustParse(t, example).SettingsDigest(); got != want {
		t.Errorf("digest of the defaults = %s, want %s (sha256 of %s)", got, want, canonical)
	}
	if got := mustParse(t, example).Domain().SettingsDigest; got != want {
		t.Errorf("Domain().SettingsDigest = %s, want %s", got, want)
	}
}

func TestSettingsDigestIgnoresForm(t *testing.T) {
	base := mustParse(t, example).SettingsDigest()
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(base) {
		t.Fatalf("digest %q is not hex SHA-256", base)
	}
	same := map[string]string{
		"defaults omitted":         minimal,
		"comments and blank lines": "# a run\n\n" + edit(t, example, "radius: 10.0             # arcsec", "# the radius:\n  radius: 10.0  # arcsec, still\n"),
		"sections reordered": `variability:
  source_aggregate_pair_metrics_min_abs_vs: 4.3
measurements:
  dec_uncertainty: 1
  ra_uncertainty: 1
  source_finder: selavy
source_association:
  radius: 10.0
  method: basic
` + minimal,
		"flow style and other spellings": `{inputs: {image: [a.fits], selavy: [a.txt], noise: [a.n.fits]},
 source_association: {radius: 1e1, method: "basic", deruiter_radius: 5.680},
 source_monitoring: {min_sigma: 3, monitor: False},
 measurements: {flux_fractional_error: -0.0, ra_uncertainty: 1.0}}`,
		"other inputs and run":     edit(t, edit(t, example, "path: docs_example_run", "path: another"), "  - data/epoch02.fits\n", "  - data/epoch09.fits\n"),
		"epoch mode":               epochExample,
		"only run settings differ": minimal + "run:\n  suppress_astropy_warnings: false\n",
		// pair_metrics on is the default, and processing changes no result.
		"pair metrics on":    edit(t, example, "min_abs_vs: 4.3", "min_abs_vs: 4.3\n  pair_metrics: true"),
		"processing section": minimal + "processing:\n  num_workers: 3\n  num_workers_io: 2\n  max_partition_mb: 50\n",
	}
	for name, text := range same {
		t.Run(name, func(t *testing.T) {
			if got := mustParse(t, text).SettingsDigest(); got != base {
				t.Errorf("digest %s, want %s", got, base)
			}
		})
	}
}

func TestSettingsDigestChangesWithEverySetting(t *testing.T) {
	base := mustParse(t, example).SettingsDigest()
	changes := []struct{ old, new string }{
		{"monitor: false", "monitor: true"},
		{"min_sigma: 3.0", "min_sigma: 3.0000001"},
		{"edge_buffer_scale: 1.2", "edge_buffer_scale: 1.3"},
		{"cluster_threshold: 3.0", "cluster_threshold: 2.0"},
		{"allow_nan: false", "allow_nan: true"},
		{"method: basic", "method: advanced"},
		{"radius: 10.0 ", "radius: 10.5 "},
		{"deruiter_radius: 5.68", "deruiter_radius: 5.69"},
		{"deruiter_beamwidth_limit: 1.5", "deruiter_beamwidth_limit: 1.6"},
		{"parallel: false", "parallel: true"},
		{"epoch_duplicate_radius: 2.5", "epoch_duplicate_radius: 2.4"},
		{"min_sigma: 5.0", "min_sigma: 3.0"}, // new_sources, now equal to monitoring's
		{"flux_fractional_error: 0.0", "flux_fractional_error: 0.1"},
		{"condon_errors: true", "condon_errors: false"},
		{"selavy_local_rms_fill_value: 0.2", "selavy_local_rms_fill_value: 0.25"},
		{"write_arrow_files: false", "write_arrow_files: true"},
		{"ra_uncertainty: 1", "ra_uncertainty: 2"},
		{"dec_uncertainty: 1", "dec_uncertainty: 2"},
		{"min_abs_vs: 4.3", "min_abs_vs: 4.4"},
		{"min_abs_vs: 4.3", "min_abs_vs: 4.3\n  pair_metrics: false"},
	}
	seen := map[string]string{base: "defaults"}
	for _, ch := range changes {
		got := mustParse(t, edit(t, example, ch.old, ch.new)).SettingsDigest()
		if prev, dup := seen[got]; dup {
			t.Errorf("%q gives the same digest as %s", ch.new, prev)
		}
		seen[got] = ch.new
	}
	// Swapping two values between sections must not collide either.
	swapped := edit(t, edit(t, example, "ra_uncertainty: 1", "ra_uncertainty: 2"), "dec_uncertainty: 1", "dec_uncertainty: 2")
	a := mustParse(t, edit(t, swapped, "ra_uncertainty: 2", "ra_uncertainty: 1")).SettingsDigest()
	b := mustParse(t, edit(t, swapped, "dec_uncertainty: 2", "dec_uncertainty: 1")).SettingsDigest()
	if a == b {
		t.Error("ra_uncertainty and dec_uncertainty swapped give the same digest")
	}
}
