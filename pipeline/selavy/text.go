package selavy

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// maxLine bounds one line of a text catalogue (real lines are ~500 bytes).
const maxLine = 1 << 20

// ReadText reads the fixed-width text catalogue: a line of column names and
// a line of units, both starting with '#', then one component per line.
// Fields are separated by blanks; the trailing comment column may be empty
// or hold words.
func ReadText(r io.Reader, name string) ([]Component, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), maxLine)
	var l *layout
	out := []Component{}
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		trimmed := strings.TrimSpace(text)
		if trimmed == "" {
			continue
		}
		if strings.HasPrefix(trimmed, "#") {
			if l == nil {
				var err error
				if l, err = newLayout(name, line, strings.Fields(trimmed[1:])); err != nil {
					return nil, err
				}
			}
			// Later '#' lines are the units line or comments.
			continue
		}
		if l == nil {
			return nil, &Error{File: name, Line: line, Err: fmt.Errorf("data before the '#' header line of column names: %w", ErrFormat)}
		}
		fields := l.splitComment(strings.Fields(text))
		if len(fields) > l.width {
			return nil, &Error{File: name, Line: line, Err: fmt.Errorf("%d fields, but the header names %d columns: %w", len(fields), l.width, ErrFormat)}
		}
		c, err := l.component(line, fields)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		return nil, &Error{File: name, Line: line + 1, Err: err}
	}
	if l == nil {
		return nil, &Error{File: name, Err: fmt.Errorf("no '#' header line of column names: %w", ErrFormat)}
	}
	return out, nil
}
