package cli

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/piperun/piperun/domain"
)

// safe returns text, from a user or an input file, for a terminal: every
// character that does not show as itself or changes how the text around it
// shows (see domain.HiddenRune: escape sequences, carriage returns,
// newlines, bidirectional overrides, zero-width characters) and every
// invalid UTF-8 byte is written as a Go-style escape (\x1b, \u202e), so
// that stored text can neither forge a line nor drive the terminal. New
// descriptions and names cannot hold such characters, but events stored
// before they were refused may, and log lines quote input files.
func safe(text string) string {
	i := strings.IndexFunc(text, func(r rune) bool { return r == utf8.RuneError || domain.HiddenRune(r) })
	if i < 0 {
		return text
	}
	var b strings.Builder
	b.WriteString(text[:i])
	for rest := text[i:]; rest != ""; {
		r, size := utf8.DecodeRuneInString(rest)
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, rest[0])
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x100 && domain.HiddenRune(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case r <= 0xffff && domain.HiddenRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		case domain.HiddenRune(r):
			fmt.Fprintf(&b, `\U%08x`, r)
		default:
			b.WriteString(rest[:size])
		}
		rest = rest[size:]
	}
	return b.String()
}
