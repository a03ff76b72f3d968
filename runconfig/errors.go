package runconfig

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	// Field is the dotted path of the offending setting, e.g.
	// "source_association.radius" or "inputs.image[2]"; empty when the
	// problem concerns the whole document.
	Field string `json:"field"`
	// Line is the 1-based line in the YAML text, or 0 when unknown.
	Line int `json:"line,omitempty"`
	// Message says what is wrong, in words meant for the user.
	Message string `json:"message"`
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Field != "" {
		b.WriteString(p.Field)
	}
	if p.Line > 0 {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "(line %d)", p.Line)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// ValidationError reports every problem found in a configuration, so that
// a user can fix them all in one go. It is the only error type Parse and
// CheckPaths return for faults in the configuration itself.
type ValidationError struct {
	Problems []Problem `json:"problems"`
}

// Error names every problem.
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	noun := "problems"
	if len(parts) == 1 {
		noun = "problem"
	}
	return fmt.Sprintf("invalid run configuration (%d %s): %s", len(parts), noun, strings.Join(parts, "; "))
}

// Fields lists the field of each problem, in order; handy for callers that
// highlight form fields.
func (e *ValidationError) Fields() []string {
	fields := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		fields[i] = p.Field
	}
	return fields
}

// problems collects Problems; its err is nil when there are none, so that a
// caller never returns a non-nil error holding an empty list.
type problems []Problem

func (ps *problems) add(field string, line int, format string, args ...any) {
	*ps = append(*ps, Problem{Field: field, Line: line, Message: fmt.Sprintf(format, args...)})
}

func (ps problems) err() error {
	if len(ps) == 0 {
		return nil
	}
	return &ValidationError{Problems: ps}
}
