package eventjson_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/domain/domaintest"
	"github.com/piperun/piperun/eventjson"
	"github.com/piperun/piperun/eventstore"
)

// Decode is checked against encoding/json, the reference: unmarshalling a
// body into the event's type with encoding/json gives what Decode must.

// decodeBodies returns, for an event, JSON bodies its type may be decoded
// from: its encoding and its zero value's, each top-level field missing,
// null, of the wrong type and given twice, names in other cases, unknown
// fields, and a few hand-written nested variants.
func decodeBodies(t *testing.T, e domain.Event) []string {
	t.Helper()
	_, full, err := eventjson.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	zeroEvent := reflect.Zero(reflect.TypeOf(e)).Interface().(domain.Event)
	_, zero, err := eventjson.Encode(zeroEvent)
	if err != nil {
		t.Fatal(err)
	}
	bodies := []string{string(full), string(zero), `{}`, `null`, `{"unknown":[1,{"a":null}],"x":"y"}`,
		strings.ToUpper(string(full)), `[]`, `"text"`, `{`, ``}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(full, &fields); err != nil {
		t.Fatal(err)
	}
	var zeroFields map[string]json.RawMessage
	if err := json.Unmarshal(zero, &zeroFields); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	with := func(k string, v json.RawMessage) string {
		m := map[string]json.RawMessage{}
		for k2, v2 := range fields {
			m[k2] = v2
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, k := range keys {
		v := fields[k]
		bodies = append(bodies,
			with(k, nil),
			with(k, json.RawMessage(`null`)),
			with(k, json.RawMessage(`{"nested":true}`)),
			with(k, json.RawMessage(`12.5`)),
			with(k, json.RawMessage(`"str"`)),
			with(k, json.RawMessage(`[]`)),
			// Given twice: the last one wins in encoding/json.
			string(full[:len(full)-1])+`,"`+k+`":`+string(zeroFields[k])+`}`,
			`{"`+k+`":`+string(v)+`,"`+k+`":null}`,
			// Names match case-insensitively in encoding/json.
			`{"`+strings.ToUpper(k)+`":`+string(v)+`}`,
			`{"`+strings.ToUpper(k[:1])+k[1:]+`":`+string(v)+`,"`+k+`":`+string(zeroFields[k])+`}`,
		)
		// Nested objects: every nested field null, missing or emptied.
		if bytes.HasPrefix(v, []byte("{")) {
			var nested map[string]json.RawMessage
			if err := json.Unmarshal(v, &nested); err != nil {
				t.Fatal(err)
			}
			for nk := range nested {
				for _, nv := range []string{`null`, `[]`, `{}`, `""`} {
					m := map[string]json.RawMessage{}
					for k2, v2 := range nested {
						m[k2] = v2
					}
					m[nk] = json.RawMessage(nv)
					b, err := json.Marshal(m)
					if err != nil {
						t.Fatal(err)
					}
					bodies = append(bodies, with(k, b))
				}
			}
		}
	}
	return bodies
}

// handBodies are bodies no encoder writes but a decoder may meet: times
// in other zones and precisions, escapes, invalid UTF-8, odd numbers.
var handBodies = map[string][]string{
	domain.TypeProcessingCompleted: {
		`{"job_id":"j","products":{"artifacts":[],"figures":{},"images":[]}}`,
		`{"job_id":"j","products":{"artifacts":null,"images":null}}`,
		`{"job_id":"j","products":{"images":[{"name":"a","datetime":"2020-08-03T04:33:55.479+02:00","frequency_mhz":1e3,"n_meas":7}]}}`,
		`{"job_id":"j","products":{"images":[{"datetime":"2020-08-03T04:33:55Z"},{"datetime":"2020-08-03T04:33:55.123456789-07:30"}]}}`,
		`{"job_id":"j","products":{"images":[{"datetime":"2020-08-03 04:33:55Z"}]}}`,
		`{"job_id":"j","products":{"images":[{"datetime":null,"ra":-0,"dec":1E-400}]}}`,
		`{"job_id":"j","products":{"images":[{"n_meas":1.0}]}}`,
		`{"job_id":"j","products":{"images":[{"n_meas":1e2}]}}`,
		`{"job_id":"j","products":{"figures":{"n_images":-3,"n_sources":99999999999999999999}}}`,
		`{"job_id":"j","products":{"artifacts":[{"name":"\u00e9\ud83d\ude00\n","digest":"sha256:x","size":5}]}}`,
		`{"job_id":"\ud800","products":{}}`,
		"{\"job_id\":\"\xff\xfe\",\"products\":{}}",
		`{"job_id":"j","products":{}} `,
		`{"job_id":"j","products":{}} x`,
		`{"job_id":"j",}`,
	},
	domain.TypeLogWritten: {
		`{"log":"l","kind":"run","lines":[]}`,
		`{"log":"l","kind":"run","lines":null}`,
		`{"log":"l","kind":"restore","lines":["a",null,"b"]}`,
		`{"log":"l","kind":"run","lines":["a",1]}`,
		`{"Log":"L","KIND":"run","Lines":["x"],"lines":["y"]}`,
		`{"log":"l","kind":"run","lines":["` + strings.Repeat("é", 300) + `"]}`,
	},
	domain.TypeProcessingRequested: {
		`{"job_id":"j","mode":"add","added_images":[],"backup":null}`,
		`{"job_id":"j","mode":"add","backup":{}}`,
		`{"job_id":"j","mode":"add","backup":{"version":3,"config":{"inputs":{"image":[],"epochs":[]}},"products":{"images":[{"epoch":""}]}}}`,
		`{"job_id":"j","debug":"true"}`,
		`{"job_id":"j","debug":1}`,
	},
	domain.TypeRestoreRequested: {
		`{"request_id":"r","backup_version":"6"}`,
		`{"request_id":"r","backup_version":6.5}`,
		`{"request_id":"r","backup_version":9223372036854775808}`,
	},
	domain.TypeDeletionRequested: {`{"anything":1}`},
	domain.TypeRunDeleted:        {`{"artifacts":[]}`, `{"artifacts":[{}]}`},
	domain.TypeRunRestored:       {`{"abandoned":[]}`, `{"abandoned":null}`},
}

// TestDecodeMatchesEncodingJSON checks that eventjson.Decode, which uses
// the JSON v2 engine, gives what encoding/json gives for every event type: the same
// value (nil and empty slices, times and their zones, fields omitted or
// null alike) or an error for the same bodies.
func TestDecodeMatchesEncodingJSON(t *testing.T) {
	samples := sampleEvents()
	// Events as a run's history writes them, fields left zero included.
	s := domaintest.NewStream(t)
	s.Create(domaintest.Config(domaintest.Settings, "epoch01"))
	s.RequestProcessing("job-1")
	samples = append(samples, s.Run.StartProcessing("job-1")...)
	p := domaintest.Products("epoch01")
	samples = append(samples, s.Run.FinishProcessing("job-1", &p, nil)...)
	samples = append(samples, s.Run.FinishProcessing("job-1", nil, fmt.Errorf("boom"))...)
	for _, r := range s.Recs {
		samples = append(samples, r.Event)
	}
	type typedBody struct {
		event domain.Event
		body  string
	}
	var all []typedBody
	for _, e := range samples {
		bodies := decodeBodies(t, e)
		bodies = append(bodies, handBodies[e.EventType()]...)
		for _, body := range bodies {
			all = append(all, typedBody{e, body})
		}
	}
	// Twice, the second time backwards: eventjson caches configurations and
	// products, and must give the same from its caches.
	for i := range all {
		all = append(all, all[len(all)-1-2*i])
	}
	checked := map[string]int{}
	for _, tb := range all {
		typ, body := tb.event.EventType(), tb.body
		want := reflect.New(reflect.TypeOf(tb.event))
		wantErr := json.Unmarshal([]byte(body), want.Interface())
		got, err := eventjson.Decode(typ, []byte(body))
		switch {
		case (err != nil) != (wantErr != nil):
			t.Errorf("%s from %s: Decode error %v, encoding/json error %v", typ, body, err, wantErr)
		case err == nil && !reflect.DeepEqual(got, want.Elem().Interface()):
			t.Errorf("%s from %s:\nDecode        %#v\nencoding/json %#v", typ, body, got, want.Elem().Interface())
		}
		checked[typ]++
	}
	for _, e := range sampleEvents() {
		if checked[e.EventType()] == 0 {
			t.Errorf("no body of %s checked", e.EventType())
		}
	}
}

// BenchmarkDecode decodes the bodies of a processing request in add mode
// (the largest event) and of a log event (the most frequent).
func BenchmarkDecode(b *testing.B) {
	for _, e := range []domain.Event{sampleEvents()[2], sampleEvents()[6]} {
		typ, data, err := eventjson.Encode(e)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(typ, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := eventjson.Decode(typ, data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestDecodedEventsShareNothing changes an event eventjson.Decode returned
// and decodes the same body again: the configurations and products it
// caches are handed out as copies.
func TestDecodedEventsShareNothing(t *testing.T) {
	e := sampleEvents()[2].(domain.ProcessingRequested)
	typ, data, err := eventjson.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		got, err := eventjson.Decode(typ, data)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("decoded %#v, want %#v", got, e)
		}
		pr := got.(domain.ProcessingRequested)
		pr.Config.Inputs.Images[0] = "changed"
		pr.Config.Inputs.Epochs[0] = "changed"
		pr.Backup.Config.Inputs.Selavy[0] = "changed"
		pr.Backup.Products.Artifacts[0].Digest = "changed"
		pr.Backup.Products.Images[0].Name = "changed"
	}
}

// TestDecodeCachesBounded decodes more distinct configurations than the
// cache keeps, twice over: every one decodes to what it encodes.
func TestDecodeCachesBounded(t *testing.T) {
	long := strings.Repeat("# a comment line of a long configuration\n", 1000)
	var bodies [][]byte
	var want []domain.Event
	for i := range 300 {
		cfg := domaintest.Config(fmt.Sprintf("sha256:%d", i), "epoch01")
		cfg.YAML = fmt.Sprintf("run: %d\n%s", i, long)
		e := domain.ConfigUpdated{Config: cfg}
		_, data, err := eventjson.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, data)
		want = append(want, e)
	}
	for range 2 {
		for i, data := range bodies {
			got, err := eventjson.Decode(domain.TypeConfigUpdated, data)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want[i]) {
				t.Fatalf("configuration %d decoded as %.200v", i, got)
			}
		}
	}
}

// TestRecorded checks that a stored event comes out with the version, time
// and actor the store recorded, and that one that cannot be decoded is an
// error naming its stream and version.
func TestRecorded(t *testing.T) {
	typ, data, err := eventjson.Encode(domain.RunDeleted{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rec, err := eventjson.Recorded(eventstore.Event{Stream: "run-x", Version: 7, Type: typ, Data: data, Time: at, Actor: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rec.Event.(domain.RunDeleted); !ok || rec.Version != 7 || !rec.Time.Equal(at) || rec.Actor != "alice" {
		t.Errorf("recorded %+v", rec)
	}
	_, err = eventjson.Recorded(eventstore.Event{Stream: "run-x", Version: 8, Type: "run.unknown.v1", Data: []byte(`{}`)})
	if err == nil || !strings.Contains(err.Error(), "event 8 of run-x") {
		t.Errorf("an unknown event type: %v", err)
	}
}
