package selavy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/piperun/piperun/pipeline/inputs"
)

// Component is one fitted Gaussian component, in the catalogue's units.
type Component struct {
	IslandID      string // island_id
	ComponentID   string // component_id
	ComponentName string // component_name, e.g. J095956-295840

	RADeg  float64 // ra_deg_cont
	DecDeg float64 // dec_deg_cont
	RAErr  float64 // ra_err, arcsec
	DecErr float64 // dec_err, arcsec

	FluxPeak    float64 // flux_peak, mJy/beam
	FluxPeakErr float64 // flux_peak_err, mJy/beam
	FluxInt     float64 // flux_int, mJy
	FluxIntErr  float64 // flux_int_err, mJy

	MajAxis    float64 // maj_axis, arcsec (FWHM)
	MinAxis    float64 // min_axis, arcsec (FWHM)
	PosAng     float64 // pos_ang, degrees
	MajAxisErr float64 // maj_axis_err, arcsec
	MinAxisErr float64 // min_axis_err, arcsec
	PosAngErr  float64 // pos_ang_err, degrees

	MajAxisDeconv float64 // maj_axis_deconv, arcsec
	MinAxisDeconv float64 // min_axis_deconv, arcsec
	PosAngDeconv  float64 // pos_ang_deconv, degrees

	ChiSquaredFit       float64 // chi_squared_fit
	SpectralIndex       float64 // spectral_index
	SpectralIndexFromTT bool    // spectral_index_from_TT
	FlagC4              bool    // flag_c4
	HasSiblings         bool    // has_siblings
	RMSImage            float64 // rms_image, the local rms, mJy/beam
}

// Sentinel errors, wrapped in *Error.
var (
	// ErrMissingColumn means the header lacks required columns.
	ErrMissingColumn = errors.New("missing column")
	// ErrBadValue means a value cannot be read as its column's type.
	ErrBadValue = errors.New("bad value")
	// ErrDuplicate means a component_id appears twice.
	ErrDuplicate = errors.New("duplicate component")
	// ErrFormat means the file is not a catalogue of the expected format.
	ErrFormat = errors.New("malformed catalogue")
	// ErrInvalidValue means a value is a number but not one its column can
	// hold: not finite, or outside the column's range (a declination of
	// 200, a negative error).
	ErrInvalidValue = errors.New("invalid value")
)

// invalidValue is an ErrInvalidValue that names its column and value, so
// that the message reads "dec_deg_cont = 200: must be within [-90, 90]".
type invalidValue struct {
	column, text, rule string
}

func (e *invalidValue) Error() string {
	return fmt.Sprintf("%s = %s: %s", e.column, e.text, e.rule)
}

func (e *invalidValue) Is(target error) bool { return target == ErrInvalidValue }

// Error locates a problem in a catalogue.
type Error struct {
	File   string
	Line   int    // 1-based line of the file; 0 when not known
	Column string // column name(s); "" when not about a column
	Err    error
}

// Error describes the problem with the file, line and column first.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("read selavy catalogue ")
	b.WriteString(e.File)
	b.WriteString(": ")
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if errors.Is(e.Err, ErrMissingColumn) {
		plural := ""
		if strings.Contains(e.Column, ",") {
			plural = "s"
		}
		fmt.Fprintf(&b, "%v%s %s", e.Err, plural, e.Column)
		return b.String()
	}
	if e.Column != "" && !errors.Is(e.Err, ErrInvalidValue) {
		fmt.Fprintf(&b, "column %s: ", e.Column)
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the underlying error, one of this package's sentinels or
// an I/O error.
func (e *Error) Unwrap() error { return e.Err }

// Format is a catalogue file format.
type Format int

// The catalogue formats.
const (
	Text Format = iota + 1
	CSV
	VOTable
)

// String names the format.
func (f Format) String() string {
	switch f {
	case Text:
		return "text"
	case CSV:
		return "csv"
	case VOTable:
		return "votable"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// FormatOf chooses the format from the file extension: .txt, .csv, or .xml
// / .vot / .votable.
func FormatOf(path string) (Format, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".txt":
		return Text, nil
	case ".csv":
		return CSV, nil
	case ".xml", ".vot", ".votable":
		return VOTable, nil
	}
	return 0, fmt.Errorf("selavy catalogue %s: unknown extension %q (want .txt, .csv or .xml): %w", path, filepath.Ext(path), ErrFormat)
}

// ReadFile reads the catalogue at path, choosing the format by extension.
// Errors name path.
func ReadFile(ctx context.Context, path string) ([]Component, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	format, err := FormatOf(path)
	if err != nil {
		return nil, err
	}
	f, err := inputs.OpenFile(path)
	if err != nil {
		return nil, fmt.Errorf("read selavy catalogue: %w", err)
	}
	defer f.Close()
	return Read(f, format, path)
}

// Read reads a catalogue in the given format; name is the file name used in
// errors.
func Read(r io.Reader, format Format, name string) ([]Component, error) {
	switch format {
	case Text:
		return ReadText(r, name)
	case CSV:
		return ReadCSV(r, name)
	case VOTable:
		return ReadVOTable(r, name)
	}
	return nil, &Error{File: name, Err: fmt.Errorf("unknown format %v: %w", format, ErrFormat)}
}

type kind int

const (
	kString kind = iota
	kFloat
	kBool
)

type column struct {
	name string
	kind kind
	// check returns, for a finite number the column cannot hold, what it
	// must be ("must not be negative"), or ""; nil accepts any finite
	// number.
	check func(v float64) string
	str   func(*Component) *string
	num   func(*Component) *float64
	flag  func(*Component) *bool
}

func strCol(name string, f func(*Component) *string) column {
	return column{name: name, kind: kString, str: f}
}

func numCol(name string, check func(float64) string, f func(*Component) *float64) column {
	return column{name: name, kind: kFloat, check: check, num: f}
}

// The rules for numbers, beyond being finite (which every number must be).
// They hold what a real Selavy catalogue holds: zero errors and sizes
// occur (VAST drops components of zero size or flux itself, and floors
// the errors), as do negative fluxes and angles and the spectral index's
// -99 for "not fitted".
var (
	// anyFinite asks nothing beyond being finite.
	anyFinite func(float64) string
	// ra is [0, 360]: Selavy prints six decimals, so a source within half
	// a microdegree of 360 reads as 360, which is the same place as 0.
	ra = func(v float64) string {
		if v < 0 || v > 360 {
			return "must be within [0, 360]"
		}
		return ""
	}
	dec = func(v float64) string {
		if v < -90 || v > 90 {
			return "must be within [-90, 90]"
		}
		return ""
	}
	nonNegative = func(v float64) string {
		if v < 0 {
			return "must not be negative"
		}
		return ""
	}
)

func flagCol(name string, f func(*Component) *bool) column {
	return column{name: name, kind: kBool, flag: f}
}

// columns are the required columns, as VAST reads them.
var columns = []column{
	strCol("island_id", func(c *Component) *string { return &c.IslandID }),
	strCol("component_id", func(c *Component) *string { return &c.ComponentID }),
	strCol("component_name", func(c *Component) *string { return &c.ComponentName }),
	numCol("ra_deg_cont", ra, func(c *Component) *float64 { return &c.RADeg }),
	numCol("dec_deg_cont", dec, func(c *Component) *float64 { return &c.DecDeg }),
	numCol("ra_err", nonNegative, func(c *Component) *float64 { return &c.RAErr }),
	numCol("dec_err", nonNegative, func(c *Component) *float64 { return &c.DecErr }),
	numCol("flux_peak", anyFinite, func(c *Component) *float64 { return &c.FluxPeak }),
	numCol("flux_peak_err", nonNegative, func(c *Component) *float64 { return &c.FluxPeakErr }),
	numCol("flux_int", anyFinite, func(c *Component) *float64 { return &c.FluxInt }),
	numCol("flux_int_err", nonNegative, func(c *Component) *float64 { return &c.FluxIntErr }),
	numCol("maj_axis", nonNegative, func(c *Component) *float64 { return &c.MajAxis }),
	numCol("min_axis", nonNegative, func(c *Component) *float64 { return &c.MinAxis }),
	numCol("pos_ang", anyFinite, func(c *Component) *float64 { return &c.PosAng }),
	numCol("maj_axis_err", nonNegative, func(c *Component) *float64 { return &c.MajAxisErr }),
	numCol("min_axis_err", nonNegative, func(c *Component) *float64 { return &c.MinAxisErr }),
	numCol("pos_ang_err", nonNegative, func(c *Component) *float64 { return &c.PosAngErr }),
	numCol("maj_axis_deconv", nonNegative, func(c *Component) *float64 { return &c.MajAxisDeconv }),
	numCol("min_axis_deconv", nonNegative, func(c *Component) *float64 { return &c.MinAxisDeconv }),
	numCol("pos_ang_deconv", anyFinite, func(c *Component) *float64 { return &c.PosAngDeconv }),
	numCol("chi_squared_fit", nonNegative, func(c *Component) *float64 { return &c.ChiSquaredFit }),
	numCol("spectral_index", anyFinite, func(c *Component) *float64 { return &c.SpectralIndex }),
	flagCol("spectral_index_from_TT", func(c *Component) *bool { return &c.SpectralIndexFromTT }),
	flagCol("flag_c4", func(c *Component) *bool { return &c.FlagC4 }),
	flagCol("has_siblings", func(c *Component) *bool { return &c.HasSiblings }),
	numCol("rms_image", nonNegative, func(c *Component) *float64 { return &c.RMSImage }),
}

// Columns returns the names of the columns a catalogue must have.
func Columns() []string {
	names := make([]string, len(columns))
	for i, c := range columns {
		names[i] = c.name
	}
	return names
}

// layout maps each required column to its index in a file's header.
type layout struct {
	file  string
	index []int // by position in columns
	// comment is the index of a trailing "comment" column, which may hold
	// free text, or -1.
	comment int
	width   int
	seen    map[string]int // component_id -> line, to catch duplicates
}

// newLayout matches header names case-insensitively (CASDA writes
// spectral_index_from_tt) and reports every missing column at once.
func newLayout(file string, line int, names []string) (*layout, error) {
	pos := make(map[string]int, len(names))
	for i, nm := range names {
		key := strings.ToLower(strings.TrimSpace(nm))
		if _, dup := pos[key]; !dup {
			pos[key] = i
		}
	}
	l := &layout{file: file, index: make([]int, len(columns)), comment: -1, width: len(names), seen: make(map[string]int)}
	var missing []string
	for i, c := range columns {
		j, ok := pos[strings.ToLower(c.name)]
		if !ok {
			missing = append(missing, c.name)
			continue
		}
		l.index[i] = j
	}
	if len(missing) > 0 {
		return nil, &Error{File: file, Line: line, Column: strings.Join(missing, ", "), Err: ErrMissingColumn}
	}
	if j, ok := pos["comment"]; ok && j == len(names)-1 {
		l.comment = j
	}
	return l, nil
}

// component builds one component from a row's fields. Fields may be fewer
// than the header's columns when trailing optional columns are empty.
func (l *layout) component(line int, fields []string) (Component, error) {
	var c Component
	for i, col := range columns {
		j := l.index[i]
		if j >= len(fields) {
			return c, &Error{File: l.file, Line: line, Column: col.name,
				Err: fmt.Errorf("no value (the row has %d fields, the header %d): %w", len(fields), l.width, ErrBadValue)}
		}
		v := strings.TrimSpace(fields[j])
		switch col.kind {
		case kString:
			if v == "" && col.name != "component_name" {
				return c, &Error{File: l.file, Line: line, Column: col.name, Err: fmt.Errorf("empty value: %w", ErrBadValue)}
			}
			*col.str(&c) = v
		case kFloat:
			f, err := strconv.ParseFloat(v, 64)
			if err != nil && !errors.Is(err, strconv.ErrRange) {
				return c, &Error{File: l.file, Line: line, Column: col.name, Err: fmt.Errorf("%q is not a number: %w", v, ErrBadValue)}
			}
			// ParseFloat reads "NaN" and "Inf", and overflows to ±Inf;
			// an underflow to zero is harmless.
			rule := ""
			if math.IsNaN(f) || math.IsInf(f, 0) {
				rule = "must be a finite number"
			} else if col.check != nil {
				rule = col.check(f)
			}
			if rule != "" {
				return c, &Error{File: l.file, Line: line, Column: col.name, Err: &invalidValue{column: col.name, text: v, rule: rule}}
			}
			*col.num(&c) = f
		case kBool:
			t, err := parseBool(v)
			if err != nil {
				return c, &Error{File: l.file, Line: line, Column: col.name, Err: err}
			}
			*col.flag(&c) = t
		}
	}
	if first, dup := l.seen[c.ComponentID]; dup {
		return c, &Error{File: l.file, Line: line, Column: "component_id",
			Err: fmt.Errorf("%w %s (first on line %d)", ErrDuplicate, c.ComponentID, first)}
	}
	l.seen[c.ComponentID] = line
	return c, nil
}

// parseBool reads Selavy's 0/1 flags and VOTable's logical spellings. An
// empty value is false: CASDA leaves spectral_index_from_tt blank when no
// spectral index was fitted.
func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "", "0", "f", "false":
		return false, nil
	case "1", "t", "true":
		return true, nil
	}
	return false, fmt.Errorf("%q is not a flag (0 or 1): %w", v, ErrBadValue)
}

// splitComment rejoins the free-text comment column when it held spaces.
func (l *layout) splitComment(fields []string) []string {
	if l.comment >= 0 && len(fields) > l.width {
		last := strings.Join(fields[l.comment:], " ")
		return append(slices.Clip(fields[:l.comment]), last)
	}
	return fields
}
