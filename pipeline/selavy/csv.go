package selavy

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
)

// ReadCSV reads a CASDA-style CSV catalogue: a header row of column names,
// then one component per row. Values may be padded with blanks, rows may
// omit trailing optional columns, and extra columns are ignored.
func ReadCSV(r io.Reader, name string) ([]Component, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, &Error{File: name, Err: fmt.Errorf("no header row: %w", ErrFormat)}
	}
	if err != nil {
		return nil, csvError(name, err)
	}
	l, err := newLayout(name, 1, header)
	if err != nil {
		return nil, err
	}
	out := []Component{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, csvError(name, err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) > l.width {
			return nil, &Error{File: name, Line: line, Err: fmt.Errorf("%d fields, but the header names %d columns: %w", len(rec), l.width, ErrFormat)}
		}
		c, err := l.component(line, rec)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
}

func csvError(name string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &Error{File: name, Line: pe.Line, Err: fmt.Errorf("%v: %w", pe.Err, ErrFormat)}
	}
	return &Error{File: name, Err: err}
}
