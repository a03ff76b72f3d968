package association

import (
	"bytes"
	"context"
	"math"
	"reflect"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/piperun/piperun/artifacts"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/pipeline"
)

// readArrow reads an Arrow IPC file product with arrow-go's reader and
// returns its schema and columns, each as one Go slice per column.
func readArrow(t *testing.T, store *artifacts.Store, p domain.Products, name string) (*arrow.Schema, map[string][]any) {
	t.Helper()
	a, ok := pipeline.FindArtifact(p, name)
	if !ok {
		t.Fatalf("no %s", name)
	}
	r, err := ipc.NewFileReader(bytes.NewReader(artifactBytes(t, store, a.Digest)), ipc.WithAllocator(memory.DefaultAllocator))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer r.Close()
	cols := map[string][]any{}
	for i := range r.NumRecords() {
		rec, err := r.Record(i)
		if err != nil {
			t.Fatal(err)
		}
		for c, f := range rec.Schema().Fields() {
			switch col := rec.Column(c).(type) {
			case *array.Int64:
				for _, v := range col.Int64Values() {
					cols[f.Name] = append(cols[f.Name], v)
				}
			case *array.Float32:
				for _, v := range col.Float32Values() {
					cols[f.Name] = append(cols[f.Name], v)
				}
			case *array.Boolean:
				for k := range col.Len() {
					cols[f.Name] = append(cols[f.Name], col.Value(k))
				}
			case *array.String:
				for k := range col.Len() {
					cols[f.Name] = append(cols[f.Name], col.Value(k))
				}
			case *array.Timestamp:
				for _, v := range col.TimestampValues() {
					cols[f.Name] = append(cols[f.Name], int64(v))
				}
			default:
				t.Fatalf("%s column %s: unexpected type %s", name, f.Name, f.Type)
			}
		}
	}
	return r.Schema(), cols
}

func same32(a any, b float64) bool {
	f, ok := a.(float32)
	return ok && (f == float32(b) || math.IsNaN(float64(f)) && math.IsNaN(b))
}

// TestWriteArrowFiles: with measurements.write_arrow_files the run has
// measurements.arrow (every association's measurement with its source as
// the first column, floats 32-bit, time without zone) and
// measurement_pairs.arrow (the pairs product's rows), read back with
// arrow-go's IPC reader and checked against the Parquet products.
func TestWriteArrowFiles(t *testing.T) {
	store := newStore(t)
	in := syntheticSurvey(t, store, 4, 150, 3)
	s := DefaultSettings()
	s.WriteArrow = true
	res, err := Associator{Settings: &s}.Associate(context.Background(), store, in, discardLog{})
	if err != nil {
		t.Fatal(err)
	}
	p := domain.Products{Artifacts: res.Artifacts}
	assoc := readProduct[AssociationRow](t, store, p, AssociationsProduct)
	meas := map[int64]pipeline.Measurement{}
	for _, im := range in.Images {
		ms, err := pipeline.ReadMeasurements(context.Background(), store, im.Measurements.Digest)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			meas[m.ID] = m
		}
	}

	schema, cols := readArrow(t, store, p, MeasurementsArrowProduct)
	if f := schema.Field(0); f.Name != "source" || f.Type.ID() != arrow.INT64 {
		t.Errorf("first column %s, want source int64", f)
	}
	if i := schema.FieldIndices("time"); len(i) != 1 || schema.Field(i[0]).Type.(*arrow.TimestampType).TimeZone != "" {
		t.Errorf("time column %v: want a timestamp without time zone", schema.FieldIndices("time"))
	}
	if len(cols["source"]) != len(assoc) || len(schema.Fields()) != 1+len(parquetColumns[pipeline.Measurement]()) {
		t.Fatalf("%d rows, %d columns; want %d rows and source plus the measurements' columns", len(cols["source"]), len(schema.Fields()), len(assoc))
	}
	for k, a := range assoc {
		m := meas[a.MeasID]
		if cols["source"][k] != a.SourceID || cols["id"][k] != m.ID || cols["name"][k] != m.Name || cols["time"][k] != m.Time.UnixNano() ||
			!same32(cols["ra"][k], m.RA) || !same32(cols["flux_int_err"][k], m.FluxIntErr) || cols["has_siblings"][k] != m.HasSiblings {
			t.Fatalf("row %d: source %v id %v name %v time %v ra %v; want association %+v of measurement %+v", k,
				cols["source"][k], cols["id"][k], cols["name"][k], cols["time"][k], cols["ra"][k], a, m)
		}
	}

	pairs := readProduct[PairRow](t, store, p, MeasurementPairsProduct)
	_, pc := readArrow(t, store, p, MeasurementPairsArrowProduct)
	if len(pairs) == 0 || len(pc["meas_id_a"]) != len(pairs) || len(pc) != len(parquetColumns[PairRow]()) {
		t.Fatalf("%d pair rows and %d columns in Arrow, %d rows in Parquet", len(pc["meas_id_a"]), len(pc), len(pairs))
	}
	for k, r := range pairs {
		if pc["meas_id_a"][k] != r.MeasIDA || pc["meas_id_b"][k] != r.MeasIDB || pc["source_id"][k] != r.SourceID ||
			pc["image_name_b"][k] != r.ImageNameB || pc["vs_peak"][k] != r.VsPeak || pc["m_int"][k] != r.MInt || pc["flux_peak_a"][k] != r.FluxPeakA {
			t.Fatalf("pair row %d differs from the Parquet product's %+v", k, r)
		}
	}

	// Off by default: no Arrow products.
	s.WriteArrow = false
	res, err = Associator{Settings: &s}.Associate(context.Background(), store, in, discardLog{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range res.Artifacts {
		if a.Name == MeasurementsArrowProduct || a.Name == MeasurementPairsArrowProduct {
			t.Errorf("%s written with write_arrow_files off", a.Name)
		}
	}
}

// parquetColumns names a row type's columns.
func parquetColumns[T any]() []arrowColumn {
	var zero T
	cols, _ := arrowColumns(reflectType(zero))
	return cols
}

func reflectType(v any) reflect.Type { return reflect.TypeOf(v) }
