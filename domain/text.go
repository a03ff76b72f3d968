package domain

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// HiddenRune reports whether r is a character that does not show as itself
// in a terminal or a page, or changes how the text around it shows:
// control characters (C0 including tab and newline, DEL, C1), format
// characters (the bidirectional overrides and isolates U+202A-U+202E and
// U+2066-U+2069, the marks U+200E/U+200F/U+061C, zero-width spaces and
// joiners U+200B-U+200D and U+2060, the byte-order mark U+FEFF, soft
// hyphen, tag characters) and the line and paragraph separators U+2028
// and U+2029. Text that users supply is refused if it holds one, and text
// shown in a terminal has them escaped.
func HiddenRune(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
}

// firstHidden returns the 1-based character position and the rune of the
// first hidden character of s (see HiddenRune) or invalid UTF-8 byte
// (returned as utf8.RuneError), or 0 if there is none.
func firstHidden(s string) (int, rune) {
	pos := 0
	for i, r := range s {
		pos++
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return pos, r
			}
		}
		if HiddenRune(r) {
			return pos, r
		}
	}
	return 0, 0
}

// describeRune names a character for an error message: its code point and,
// for a well-known invisible one, what it is.
func describeRune(r rune) string {
	name := map[rune]string{
		'\t': "tab", '\n': "line feed", '\r': "carriage return", 0x1b: "escape", 0x07: "bell", 0x7f: "delete",
		0xa0: "no-break space", 0xad: "soft hyphen",
		0x200b: "zero-width space", 0x200c: "zero-width non-joiner", 0x200d: "zero-width joiner",
		0x200e: "left-to-right mark", 0x200f: "right-to-left mark",
		0x202a: "left-to-right embedding", 0x202b: "right-to-left embedding", 0x202c: "pop directional formatting",
		0x202d: "left-to-right override", 0x202e: "right-to-left override",
		0x2066: "left-to-right isolate", 0x2067: "right-to-left isolate", 0x2068: "first strong isolate", 0x2069: "pop directional isolate",
		0x2028: "line separator", 0x2029: "paragraph separator", 0x2060: "word joiner", 0xfeff: "byte-order mark",
		0x301: "combining acute accent",
	}[r]
	if name != "" {
		return fmt.Sprintf("U+%04X (%s)", r, name)
	}
	return fmt.Sprintf("U+%04X", r)
}
