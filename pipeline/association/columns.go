package association

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/parquet-go/parquet-go"
	"github.com/piperun/piperun/artifacts"
)

// appendMeasurements reads the columns association needs straight from a
// measurements product's pages and appends its rows to dst: decoding whole
// rows through a subset schema costs several times more, and at a million
// measurements reading dominates association.
func appendMeasurements(ctx context.Context, store *artifacts.Store, digest string, image int32, dst []measurement) ([]measurement, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rc, err := store.Open(digest)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("read artifact %s: %w", digest, err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("decode artifact %s: %w", digest, err)
	}
	start := len(dst)
	dst = slices.Grow(dst, int(f.NumRows()))[:start+int(f.NumRows())]
	ms := dst[start:]
	for i := range ms {
		ms[i] = measurement{Image: image}
	}
	floats := []struct {
		name string
		dst  func(m *measurement) *float64
	}{
		{"ra", func(m *measurement) *float64 { return &m.RA }},
		{"dec", func(m *measurement) *float64 { return &m.Dec }},
		{"flux_peak", func(m *measurement) *float64 { return &m.FluxPeak }},
		{"flux_peak_err", func(m *measurement) *float64 { return &m.FluxPeakErr }},
		{"flux_int", func(m *measurement) *float64 { return &m.FluxInt }},
		{"flux_int_err", func(m *measurement) *float64 { return &m.FluxIntErr }},
		{"snr", func(m *measurement) *float64 { return &m.SNR }},
		{"compactness", func(m *measurement) *float64 { return &m.Compactness }},
		{"weight_ew", func(m *measurement) *float64 { return &m.WeightEW }},
		{"weight_ns", func(m *measurement) *float64 { return &m.WeightNS }},
		{"uncertainty_ew", func(m *measurement) *float64 { return &m.UncertaintyEW }},
		{"uncertainty_ns", func(m *measurement) *float64 { return &m.UncertaintyNS }},
		{"flux_peak_isl_ratio", func(m *measurement) *float64 { return &m.FluxPeakIslRatio }},
		{"flux_int_isl_ratio", func(m *measurement) *float64 { return &m.FluxIntIslRatio }},
	}
	for _, c := range floats {
		err := readColumn(f, c.name, func(p parquet.Page, row int) error {
			r, ok := p.Values().(parquet.DoubleReader)
			if !ok {
				return errors.New("not a column of doubles")
			}
			buf := make([]float64, p.NumValues())
			if _, err := r.ReadDoubles(buf); err != nil && err != io.EOF {
				return err
			}
			for i, v := range buf {
				*c.dst(&ms[row+i]) = v
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("decode artifact %s: %w", digest, err)
		}
	}
	err = readColumn(f, "id", func(p parquet.Page, row int) error {
		r, ok := p.Values().(parquet.Int64Reader)
		if !ok {
			return errors.New("not a column of int64")
		}
		buf := make([]int64, p.NumValues())
		if _, err := r.ReadInt64s(buf); err != nil && err != io.EOF {
			return err
		}
		for i, v := range buf {
			ms[row+i].ID = v
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("decode artifact %s: %w", digest, err)
	}
	bools := []struct {
		name string
		dst  func(m *measurement) *bool
	}{
		{"has_siblings", func(m *measurement) *bool { return &m.HasSiblings }},
		{"forced", func(m *measurement) *bool { return &m.Forced }},
	}
	for _, c := range bools {
		err := readColumn(f, c.name, func(p parquet.Page, row int) error {
			r, ok := p.Values().(parquet.BooleanReader)
			if !ok {
				return errors.New("not a column of booleans")
			}
			buf := make([]bool, p.NumValues())
			if _, err := r.ReadBooleans(buf); err != nil && err != io.EOF {
				return err
			}
			for i, v := range buf {
				*c.dst(&ms[row+i]) = v
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("decode artifact %s: %w", digest, err)
		}
	}
	return dst, nil
}

// readColumn calls fn with each page of the named column and the row its
// first value belongs to. The column must be flat and without nulls.
func readColumn(f *parquet.File, name string, fn func(p parquet.Page, row int) error) error {
	leaf, ok := f.Schema().Lookup(name)
	if !ok {
		return fmt.Errorf("no column %s", name)
	}
	if leaf.MaxRepetitionLevel > 0 {
		return fmt.Errorf("column %s is repeated", name)
	}
	row := 0
	for _, rg := range f.RowGroups() {
		pages := rg.ColumnChunks()[leaf.ColumnIndex].Pages()
		for {
			p, err := pages.ReadPage()
			if err == io.EOF {
				break
			}
			if err != nil {
				pages.Close()
				return fmt.Errorf("column %s: %w", name, err)
			}
			if p.NumNulls() > 0 || int64(row)+p.NumValues() > f.NumRows() {
				parquet.Release(p)
				pages.Close()
				return fmt.Errorf("column %s has nulls or too many values", name)
			}
			err = fn(p, row)
			row += int(p.NumValues())
			parquet.Release(p)
			if err != nil {
				pages.Close()
				return fmt.Errorf("column %s: %w", name, err)
			}
		}
		pages.Close()
	}
	if int64(row) != f.NumRows() {
		return fmt.Errorf("column %s has %d values for %d rows", name, row, f.NumRows())
	}
	return nil
}
