package statecodec_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/statecodec"
)

// TestStateWithoutPairCount reads a state in the form written before the
// measurement-pair figure existed (testdata/state-b1.bin, every field
// filled, with its JSON beside it): it decodes as it did then, with no
// pairs counted, and encodes again in the current form.
func TestStateWithoutPairCount(t *testing.T) {
	old, want := storedState(t, "state-b1.bin", "state-b1.json")
	got := checkDecodesTo(t, old, want)
	if got.Products.Figures.NMeasurementPairs != 0 {
		t.Errorf("a state without the figure has %d pairs", got.Products.Figures.NMeasurementPairs)
	}
	again, err := statecodec.EncodeState(got)
	if err != nil {
		t.Fatal(err)
	}
	if again[0] != 0xB2 || len(again) != len(old)+2 { // one more figure in products and backup
		t.Errorf("re-encoded as %#x, %d bytes (was %d)", again[0], len(again), len(old))
	}
	var back domain.Run
	if err := statecodec.DecodeState(again, &back); err != nil || !reflect.DeepEqual(mustJSON(t, back), mustJSON(t, want)) {
		t.Errorf("the re-encoded state decodes differently: %v", err)
	}
}

// TestStateWithoutPairCountNoJob: the same form without a job
// (testdata/state-b1-nojob.bin, state-b1.json's run with its job dropped)
// decodes whole to that run.
func TestStateWithoutPairCountNoJob(t *testing.T) {
	old, want := storedState(t, "state-b1-nojob.bin", "state-b1.json")
	want.Job = nil
	checkDecodesTo(t, old, want)
}

// TestStatePairCountRoundTrip: the current form keeps the pair figure of
// the products and of the backup.
func TestStatePairCountRoundTrip(t *testing.T) {
	r := domain.Run{Name: "p", Products: &domain.Products{Figures: domain.Figures{NMeasurementPairs: 47_300_000}},
		Backup: &domain.Backup{Version: 3, Products: domain.Products{Figures: domain.Figures{NMeasurementPairs: 26}}}}
	b, err := statecodec.EncodeState(r)
	if err != nil {
		t.Fatal(err)
	}
	var got domain.Run
	if err := statecodec.DecodeState(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Products.Figures.NMeasurementPairs != 47_300_000 || got.Backup.Products.Figures.NMeasurementPairs != 26 {
		t.Errorf("pairs %d and %d after a round trip", got.Products.Figures.NMeasurementPairs, got.Backup.Products.Figures.NMeasurementPairs)
	}
}

// storedState reads a state as an earlier version stored it
// (testdata/<bin>) and the run it holds (testdata/<runJSON>).
func storedState(t *testing.T, bin, runJSON string) ([]byte, domain.Run) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", bin))
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(filepath.Join("testdata", runJSON))
	if err != nil {
		t.Fatal(err)
	}
	var want domain.Run
	if err := json.Unmarshal(text, &want); err != nil {
		t.Fatal(err)
	}
	return data, want
}

// checkDecodesTo checks that both decoders read data as want, and returns
// what DecodeState read.
func checkDecodesTo(t *testing.T, data []byte, want domain.Run) domain.Run {
	t.Helper()
	var got, shared domain.Run
	if err := statecodec.DecodeState(data, &got); err != nil {
		t.Fatal(err)
	}
	if err := statecodec.DecodeSharedState(data, &shared); err != nil {
		t.Fatal(err)
	}
	if mustJSON(t, got) != mustJSON(t, want) || mustJSON(t, shared) != mustJSON(t, want) {
		t.Fatalf("decoded\n%s\nwant\n%s", mustJSON(t, got), mustJSON(t, want))
	}
	return got
}
