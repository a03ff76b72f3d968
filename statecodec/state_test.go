package statecodec_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/domain/domaintest"
	"github.com/piperun/piperun/statecodec"
)

// TestStateRoundTrip checks that a state encoded and decoded is equal to
// the original (nil and empty slices apart), that the decoded state shares
// no slice between its configurations, that repeated configurations are
// written once, and that a state stored as a plain Run's JSON (as before
// the binary form) decodes as encoding/json decodes it.
func TestStateRoundTrip(t *testing.T) {
	for i, r := range domaintest.StateRuns(t) {
		b, err := statecodec.EncodeState(r)
		if err != nil {
			t.Fatal(err)
		}
		var got domain.Run
		if err := statecodec.DecodeState(b, &got); err != nil {
			t.Fatalf("state %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("state %d differs after a round trip:\n got %s\nwant %s", i, domaintest.JSONString(t, got), domaintest.JSONString(t, r))
		}
		domaintest.CheckUnshared(t, "decoded state", reflect.ValueOf(got), reflect.ValueOf(r))
		var sharing domain.Run
		if err := statecodec.DecodeSharedState(b, &sharing); err != nil || !reflect.DeepEqual(sharing, r) {
			t.Fatalf("state %d: DecodeSharedState gives %+v, %v", i, sharing, err)
		}
		if got.Backup != nil && len(got.Backup.Config.Inputs.Images) > 0 && len(got.Config.Inputs.Images) > 0 &&
			&got.Backup.Config.Inputs.Images[0] == &got.Config.Inputs.Images[0] {
			t.Fatalf("state %d: backup and current configuration share a slice", i)
		}
		if len(r.Config.YAML) > 16 {
			if copies := strings.Count(string(b), r.Config.YAML); copies != 1 {
				t.Fatalf("state %d: the current configuration is written %d times", i, copies)
			}
		}

		plain, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var fromPlain, want domain.Run
		if err := statecodec.DecodeState(plain, &fromPlain); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(plain, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(fromPlain, want) {
			t.Fatalf("state %d: a plain Run decodes differently from encoding/json:\n got %s\nwant %s", i, domaintest.JSONString(t, fromPlain), domaintest.JSONString(t, want))
		}
	}
}

// TestStateEveryFieldDistinct fills every field of a Run (through
// reflection, so that a field added to Run and not to the encoding fails
// here) with values that differ from field to field, configurations
// included, and checks the round trip; then the same with every
// configuration equal, and with times in other locations.
func TestStateEveryFieldDistinct(t *testing.T) {
	var r domain.Run
	n := 0
	domaintest.FillDistinct(reflect.ValueOf(&r).Elem(), &n)
	roundTrip := func(name string, r domain.Run) {
		t.Helper()
		b, err := statecodec.EncodeState(r)
		if err != nil {
			t.Fatal(err)
		}
		var got domain.Run
		if err := statecodec.DecodeState(b, &got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("%s differs after a round trip:\n got %s\nwant %s", name, domaintest.JSONString(t, got), domaintest.JSONString(t, r))
		}
	}
	roundTrip("distinct fields", r)
	same := domaintest.Snapshot(t, r)
	*same.LastSuccessful = same.Config.Clone()
	same.Backup.Config = same.Config.Clone()
	same.Job.Config = same.Config.Clone()
	roundTrip("equal configurations", same)
	chain := domaintest.Snapshot(t, r)
	chain.Backup.Config = chain.LastSuccessful.Clone()
	chain.Job.Config = chain.Backup.Config.Clone()
	roundTrip("configurations equal to the last successful", chain)
	zoned := domaintest.Snapshot(t, r)
	zoned.Created = zoned.Created.In(time.FixedZone("", 10*3600)) // as a decoded "+10:00" is
	zoned.Updated = zoned.Updated.In(time.Local)
	roundTrip("times in other locations", zoned)
}

// TestStateHead checks that DecodeSharedStateHead gives exactly the
// leading fields of the whole decode, and nothing else, from the binary
// form and from plain JSON; and that a state cut inside its head fails.
func TestStateHead(t *testing.T) {
	var r domain.Run
	n := 0
	domaintest.FillDistinct(reflect.ValueOf(&r).Elem(), &n)
	want := domain.Run{Name: r.Name, Description: r.Description, Owner: r.Owner, Status: r.Status,
		Version: r.Version, Created: r.Created, Updated: r.Updated, Deleted: r.Deleted}
	bin, err := statecodec.EncodeState(r)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"binary": bin, "plain JSON": []byte(mustJSON(t, r))} {
		var got domain.Run
		if err := statecodec.DecodeSharedStateHead(data, &got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: head\n got %s\nwant %s", name, domaintest.JSONString(t, got), domaintest.JSONString(t, want))
		}
	}
	head, err := statecodec.EncodeState(want)
	if err != nil {
		t.Fatal(err)
	}
	// The head of want's state ends where its configuration starts: the
	// empty configuration takes 7 bytes, then 5 absent parts and no logs.
	for i := 1; i < len(head)-13; i++ {
		var got domain.Run
		if err := statecodec.DecodeSharedStateHead(head[:i], &got); err == nil {
			t.Fatalf("a state cut to %d bytes, inside its head, decoded without error", i)
		}
	}
}

// TestStateWithConfigDeltas reads a state stored with configurations
// written as their differences from one before them
// (testdata/state-b2-deltas.bin: the last successful one has a suffix
// more, the backup's a line less in its middle, the job's a prefix more
// than the backup's; every other field filled, its JSON beside it). It
// decodes whole, by both decoders; encoded again it is written with whole
// texts and decodes the same; cut short it is an error, and damaged it
// decodes or fails without panicking.
func TestStateWithConfigDeltas(t *testing.T) {
	b, want := storedState(t, "state-b2-deltas.bin", "state-b2-deltas.json")
	got := checkDecodesTo(t, b, want)
	if got.Config.YAML == got.Backup.Config.YAML || got.Job.Config.YAML == got.Backup.Config.YAML ||
		got.LastSuccessful.YAML == got.Config.YAML {
		t.Fatal("the fixture's configurations are not all different")
	}
	again, err := statecodec.EncodeState(got)
	if err != nil {
		t.Fatal(err)
	}
	if whole := len(got.Config.YAML) + len(got.LastSuccessful.YAML) + len(got.Backup.Config.YAML) + len(got.Job.Config.YAML); len(again) < whole {
		t.Errorf("re-encoded in %d bytes, less than the four texts' %d: not written whole", len(again), whole)
	}
	var back domain.Run
	if err := statecodec.DecodeState(again, &back); err != nil || mustJSON(t, back) != mustJSON(t, want) {
		t.Errorf("the re-encoded state decodes differently: %v", err)
	}
	for i := 1; i < len(b); i++ {
		if err := statecodec.DecodeState(b[:i], &got); err == nil {
			t.Fatalf("a state cut to %d of %d bytes decoded without error", i, len(b))
		}
	}
	for i := 1; i < len(b); i += 3 {
		for _, x := range []byte{0, 1, 2, 3, 4, 5, 0x7f, 0xff} {
			d := slices.Clone(b)
			d[i] = x
			_ = statecodec.DecodeState(d, &got)
		}
	}
}

// TestStateSmaller checks the point of the encoding on a run whose job
// repeats its current configuration: the copy is not written.
func TestStateSmaller(t *testing.T) {
	s := domaintest.CompletedRun(t)
	s.Configure(domaintest.Config(domaintest.Settings, "epoch01", "epoch02", "epoch03"))
	s.RequestProcessing("job-2")
	var r domain.Run
	for _, rec := range s.Recs {
		r.Apply(rec)
	}
	r.Config.YAML = strings.Repeat("# a long commented configuration\n", 100)
	r.Job.Config.YAML = r.Config.YAML
	compact, err := statecodec.EncodeState(r)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if len(plain)-len(compact) < len(r.Config.YAML) {
		t.Fatalf("compact state is %d bytes, plain %d: the job's copy of the %d-byte configuration was not dropped", len(compact), len(plain), len(r.Config.YAML))
	}
}

// TestStateDamaged checks that every truncation of a state, and states
// with bytes changed, decode to an error or to some state, never a panic,
// and that a truncated state is an error.
func TestStateDamaged(t *testing.T) {
	var r domain.Run
	n := 0
	domaintest.FillDistinct(reflect.ValueOf(&r).Elem(), &n)
	b, err := statecodec.EncodeState(r)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(b); i++ {
		var got domain.Run
		if err := statecodec.DecodeState(b[:i], &got); err == nil {
			t.Fatalf("a state cut to %d of %d bytes decoded without error", i, len(b))
		}
	}
	if err := statecodec.DecodeState(append(slices.Clone(b), 0), &r); err == nil {
		t.Fatal("a state with a byte after it decoded without error")
	}
	for i := 1; i < len(b); i++ {
		for _, x := range []byte{0, 1, 2, 3, 4, 0x7f, 0xff} {
			d := slices.Clone(b)
			d[i] = x
			var got domain.Run
			_ = statecodec.DecodeState(d, &got)
		}
	}
}

// addStateSeeds adds a fuzz target's seeds: a state with every field
// filled and distinct, the same with configurations written as
// differences, and the magic byte alone.
func addStateSeeds(f *testing.F) {
	var r domain.Run
	n := 0
	domaintest.FillDistinct(reflect.ValueOf(&r).Elem(), &n)
	b, err := statecodec.EncodeState(r)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	r.Config.YAML = strings.Repeat("# comment\n", 60) + "inputs: [a, b]\n"
	r.Backup.Config.YAML = strings.Repeat("# comment\n", 60) + "inputs: [a]\n"
	if b, err = statecodec.EncodeState(r); err != nil {
		f.Fatal(err)
	}
	f.Add(b) // a configuration as a difference
	f.Add([]byte{0xB1})
	f.Add([]byte{0xB2})
}

// FuzzDecodeState feeds damaged states to DecodeState: no panic, no hang,
// no huge allocation.
func FuzzDecodeState(f *testing.F) {
	addStateSeeds(f)
	f.Add([]byte(`{"name":"r"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var got domain.Run
		if statecodec.DecodeState(data, &got) == nil && len(data) > 0 && (data[0] == 0xB1 || data[0] == 0xB2) {
			again, err := statecodec.EncodeState(got)
			if err != nil {
				t.Fatal(err)
			}
			var back domain.Run
			if err := statecodec.DecodeState(again, &back); err != nil || !reflect.DeepEqual(back, got) {
				t.Fatalf("a decoded state does not survive a round trip: %v", err)
			}
		}
	})
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// BenchmarkStateCodec compares the binary state with the JSON it replaced,
// on the state of a run with an addition queued: four configurations of a
// few kilobytes of commented YAML, two of them distinct.
func BenchmarkStateCodec(b *testing.B) {
	s := domaintest.NewStream(b)
	s.Create(domaintest.Config(domaintest.Settings, "epoch01", "epoch02"))
	s.Process("job-1", domaintest.Products("epoch01", "epoch02"))
	s.Configure(domaintest.Config(domaintest.Settings, "epoch01", "epoch02", "epoch03"))
	s.RequestProcessing("job-2")
	var r domain.Run
	for _, rec := range s.Recs {
		r.Apply(rec)
	}
	comments := strings.Repeat("# Review every setting before processing: some defaults will not suit.\n", 50)
	r.Config.YAML = comments + r.Config.YAML
	r.Job.Config.YAML = r.Config.YAML
	r.LastSuccessful.YAML = comments + r.LastSuccessful.YAML
	r.Backup.Config.YAML = r.LastSuccessful.YAML
	bin, err := statecodec.EncodeState(r)
	if err != nil {
		b.Fatal(err)
	}
	plain, err := json.Marshal(r)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode/binary", func(b *testing.B) {
		b.ReportMetric(float64(len(bin)), "state-bytes")
		for b.Loop() {
			if _, err := statecodec.EncodeState(r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode/json", func(b *testing.B) {
		b.ReportMetric(float64(len(plain)), "state-bytes")
		for b.Loop() {
			if _, err := json.Marshal(r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/binary", func(b *testing.B) {
		for b.Loop() {
			var got domain.Run
			if err := statecodec.DecodeState(bin, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The state after its job ended, as a restore request finds it in the
	// command cache.
	r.Job, r.Status = nil, domain.StatusCompleted
	done, err := statecodec.EncodeState(r)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("decode/shared", func(b *testing.B) {
		for b.Loop() {
			var got domain.Run
			if err := statecodec.DecodeSharedState(done, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/json", func(b *testing.B) {
		for b.Loop() {
			var got domain.Run
			if err := statecodec.DecodeState(plain, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestStateKeepsStarts: the binary state keeps a job's start count, and a
// state written before starts were counted (Started alone, in the same
// byte) reads as a started job with no count, which ResumeProcessing takes
// for one start.
func TestStateKeepsStarts(t *testing.T) {
	r := domaintest.RunningJob(t, 2).Run
	b, err := statecodec.EncodeState(r)
	if err != nil {
		t.Fatal(err)
	}
	var got domain.Run
	if err := statecodec.DecodeState(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Job == nil || !got.Job.Started || got.Job.Starts != 2 {
		t.Fatalf("decoded job %+v, want started twice", got.Job)
	}
	old := r
	job := *r.Job
	job.Starts = 0 // what the old encoder wrote: the Started byte alone, 1
	old.Job = &job
	b, err = statecodec.EncodeState(old)
	if err != nil {
		t.Fatal(err)
	}
	if err := statecodec.DecodeState(b, &got); err != nil {
		t.Fatal(err)
	}
	if !got.Job.Started || got.Job.Starts != 0 {
		t.Fatalf("an old state decoded as %+v, want started with no count", got.Job)
	}
	domaintest.Single[domain.ProcessingStarted](t, got.ResumeProcessing(job.ID, 2))
	domaintest.Single[domain.ProcessingFailed](t, got.ResumeProcessing(job.ID, 1))
}
