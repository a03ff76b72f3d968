package selavy

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ReadVOTable reads the first table of a VOTable whose data are serialised
// as TABLEDATA: FIELD elements name the columns, each TR is a component and
// its TD elements the values. Errors give the line of the TR.
func ReadVOTable(r io.Reader, name string) ([]Component, error) {
	dec := xml.NewDecoder(r)
	var (
		fields  []string
		l       *layout
		out     = []Component{}
		inTable bool
		row     []string
		rowLine int
		cell    *strings.Builder
	)
	fail := func(err error) error {
		line, _ := dec.InputPos()
		return &Error{File: name, Line: line, Err: err}
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				return nil, &Error{File: name, Line: se.Line, Err: fmt.Errorf("%s: %w", se.Msg, ErrFormat)}
			}
			return nil, fail(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "TABLE":
				if l != nil || inTable {
					// Only the first table is the component catalogue.
					if err := dec.Skip(); err != nil {
						return nil, fail(fmt.Errorf("%v: %w", err, ErrFormat))
					}
					continue
				}
				inTable = true
			case "FIELD":
				if inTable && l == nil {
					fields = append(fields, attr(t, "name"))
				}
			case "BINARY", "BINARY2", "FITS":
				if inTable {
					return nil, fail(fmt.Errorf("%s serialisation is not supported, only TABLEDATA: %w", t.Name.Local, ErrFormat))
				}
			case "TABLEDATA":
				if !inTable {
					return nil, fail(fmt.Errorf("TABLEDATA outside a TABLE: %w", ErrFormat))
				}
				line, _ := dec.InputPos()
				if l, err = newLayout(name, line, fields); err != nil {
					return nil, err
				}
			case "TR":
				if l == nil {
					return nil, fail(fmt.Errorf("TR outside TABLEDATA: %w", ErrFormat))
				}
				row = row[:0]
				rowLine, _ = dec.InputPos()
			case "TD":
				if l == nil {
					return nil, fail(fmt.Errorf("TD outside TABLEDATA: %w", ErrFormat))
				}
				cell = &strings.Builder{}
			}
		case xml.CharData:
			if cell != nil {
				cell.Write(t)
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "TD":
				if cell != nil {
					row = append(row, cell.String())
					cell = nil
				}
			case "TR":
				if l == nil {
					continue
				}
				if len(row) > l.width {
					return nil, &Error{File: name, Line: rowLine, Err: fmt.Errorf("%d cells, but the table has %d fields: %w", len(row), l.width, ErrFormat)}
				}
				c, err := l.component(rowLine, row)
				if err != nil {
					return nil, err
				}
				out = append(out, c)
			case "TABLE":
				if inTable {
					inTable = false
					if l == nil {
						// A table without data is an empty catalogue if its
						// fields are right.
						if l, err = newLayout(name, 0, fields); err != nil {
							return nil, err
						}
					}
				}
			}
		}
	}
	if l == nil {
		return nil, &Error{File: name, Err: fmt.Errorf("no TABLE element: %w", ErrFormat)}
	}
	return out, nil
}

func attr(e xml.StartElement, name string) string {
	for _, a := range e.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}
