package association

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/piperun/piperun/artifacts"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/pipeline"
)

// Arrow product names (measurements.write_arrow_files), as VAST names
// them.
const (
	MeasurementsArrowProduct     = "measurements.arrow"
	MeasurementPairsArrowProduct = "measurement_pairs.arrow"
)

// arrowBatchRows bounds the rows of one record batch of measurements.arrow.
const arrowBatchRows = 1 << 16

// arrowColumn is a column of an Arrow product taken from a struct field:
// VAST's files hold the Parquet products' columns with 64-bit floats made
// 32-bit and times without a time zone (nanoseconds, as pandas has them).
type arrowColumn struct {
	field arrow.Field
	index int // of the struct field
}

// arrowColumns lists the columns of a struct type, named by their parquet
// tags.
func arrowColumns(t reflect.Type) ([]arrowColumn, error) {
	var cols []arrowColumn
	for i := range t.NumField() {
		f := t.Field(i)
		name := strings.Split(f.Tag.Get("parquet"), ",")[0]
		var typ arrow.DataType
		switch {
		case f.Type == reflect.TypeFor[time.Time]():
			typ = &arrow.TimestampType{Unit: arrow.Nanosecond}
		case f.Type.Kind() == reflect.Float64, f.Type.Kind() == reflect.Float32:
			typ = arrow.PrimitiveTypes.Float32
		case f.Type.Kind() == reflect.Int64:
			typ = arrow.PrimitiveTypes.Int64
		case f.Type.Kind() == reflect.Bool:
			typ = arrow.FixedWidthTypes.Boolean
		case f.Type.Kind() == reflect.String:
			typ = arrow.BinaryTypes.String
		default:
			return nil, fmt.Errorf("column %s: no Arrow type for %s", name, f.Type)
		}
		cols = append(cols, arrowColumn{field: arrow.Field{Name: name, Type: typ}, index: i})
	}
	return cols, nil
}

// appendArrow appends the field of v a column holds to its builder.
func appendArrow(b array.Builder, c arrowColumn, v reflect.Value) {
	f := v.Field(c.index)
	switch b := b.(type) {
	case *array.Float32Builder:
		b.Append(float32(f.Float()))
	case *array.Int64Builder:
		b.Append(f.Int())
	case *array.BooleanBuilder:
		b.Append(f.Bool())
	case *array.StringBuilder:
		b.Append(f.String())
	case *array.TimestampBuilder:
		b.Append(arrow.Timestamp(f.Interface().(time.Time).UnixNano()))
	}
}

// arrowWriter writes rows of a struct type as an Arrow IPC file, with
// leading columns of its own.
type arrowWriter struct {
	w       *ipc.FileWriter
	b       *array.RecordBuilder
	cols    []arrowColumn
	leading int
}

func newArrowWriter(u *pipeline.Upload, leading []arrow.Field, t reflect.Type) (*arrowWriter, error) {
	cols, err := arrowColumns(t)
	if err != nil {
		return nil, err
	}
	fields := append([]arrow.Field{}, leading...)
	for _, c := range cols {
		fields = append(fields, c.field)
	}
	schema := arrow.NewSchema(fields, nil)
	w, err := ipc.NewFileWriter(u, ipc.WithSchema(schema), ipc.WithAllocator(memory.DefaultAllocator))
	if err != nil {
		return nil, err
	}
	return &arrowWriter{w: w, b: array.NewRecordBuilder(memory.DefaultAllocator, schema), cols: cols, leading: len(leading)}, nil
}

// add appends one row (its leading columns already appended).
func (a *arrowWriter) add(v reflect.Value) {
	for i, c := range a.cols {
		appendArrow(a.b.Field(a.leading+i), c, v)
	}
}

// flush writes the rows added so far as a record batch.
func (a *arrowWriter) flush() error {
	rec := a.b.NewRecord()
	defer rec.Release()
	if rec.NumRows() == 0 {
		return nil
	}
	return a.w.Write(rec)
}

func (a *arrowWriter) close() error {
	a.b.Release()
	return a.w.Close()
}

// arrowPairs writes measurement pairs to measurement_pairs.arrow, one
// record batch per row group of the Parquet product.
type arrowPairs struct{ a *arrowWriter }

func (p arrowPairs) write(rows []PairRow) error {
	for i := range rows {
		p.a.add(reflect.ValueOf(&rows[i]).Elem())
	}
	return nil
}

func (p arrowPairs) flush() error { return p.a.flush() }

// startArrowPairs starts measurement_pairs.arrow.
func startArrowPairs(ctx context.Context, store *artifacts.Store) (*pipeline.Upload, arrowPairs, error) {
	u := pipeline.StartUpload(ctx, store, MeasurementPairsArrowProduct)
	a, err := newArrowWriter(u, nil, reflect.TypeFor[PairRow]())
	if err != nil {
		_, err = u.Finish(fmt.Errorf("%s: %w", MeasurementPairsArrowProduct, err))
		return nil, arrowPairs{}, err
	}
	return u, arrowPairs{a}, nil
}

// writeMeasurementsArrow writes measurements.arrow as VAST's
// createmeasarrow does: every association's measurement, in association
// order, with its source id as the first column, source.
func (e *engine) writeMeasurementsArrow(ctx context.Context, store *artifacts.Store, images []pipeline.ImageProducts, forcedProducts []domain.Artifact, assoc []AssociationRow, ranges []measRange) (domain.Artifact, error) {
	// Measurements are read whole, image by image: the rows of one source
	// come from every image.
	all := make([][]pipeline.Measurement, len(images))
	for i, im := range images {
		ms, err := pipeline.ReadMeasurements(ctx, store, im.Measurements.Digest)
		if err != nil {
			return domain.Artifact{}, fmt.Errorf("%s: measurements of image %s: %w", MeasurementsArrowProduct, im.Image.Name, err)
		}
		all[i] = ms
	}
	// Forced measurements, as VAST includes its forced_*.parquet files.
	forcedRows := map[int64]*pipeline.Measurement{}
	for _, a := range forcedProducts {
		ms, err := pipeline.ReadMeasurements(ctx, store, a.Digest)
		if err != nil {
			return domain.Artifact{}, fmt.Errorf("%s: %s: %w", MeasurementsArrowProduct, a.Name, err)
		}
		for i := range ms {
			forcedRows[ms[i].ID] = &ms[i]
		}
	}
	index := measIndex(ranges)
	u := pipeline.StartUpload(ctx, store, MeasurementsArrowProduct)
	return u.Finish(func() error {
		a, err := newArrowWriter(u, []arrow.Field{{Name: "source", Type: arrow.PrimitiveTypes.Int64}}, reflect.TypeFor[pipeline.Measurement]())
		if err != nil {
			return fmt.Errorf("%s: %w", MeasurementsArrowProduct, err)
		}
		source := a.b.Field(0).(*array.Int64Builder)
		for k, r := range assoc {
			source.Append(r.SourceID)
			if f, ok := forcedRows[r.MeasID]; ok {
				a.add(reflect.ValueOf(f).Elem())
			} else if mi, ok := index(r.MeasID); ok {
				m := &e.meas[mi]
				a.add(reflect.ValueOf(&all[m.Image][mi-ranges[m.Image].lo]).Elem())
			} else {
				return fmt.Errorf("%s: measurement %d of source %d is in no product", MeasurementsArrowProduct, r.MeasID, r.SourceID)
			}
			if (k+1)%arrowBatchRows == 0 {
				if err := a.flush(); err != nil {
					return fmt.Errorf("%s: %w", MeasurementsArrowProduct, err)
				}
			}
		}
		if err := a.flush(); err != nil {
			return fmt.Errorf("%s: %w", MeasurementsArrowProduct, err)
		}
		if err := a.close(); err != nil {
			return fmt.Errorf("%s: %w", MeasurementsArrowProduct, err)
		}
		return nil
	}())
}
