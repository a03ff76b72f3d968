// Rules for run names and descriptions.

package domain

import (
	"fmt"
	"unicode/utf8"
)

// Limits on user-supplied run fields, as in the VAST pipeline.
const (
	MaxRunNameLength    = 64
	MaxDescriptionRunes = 240
)

// ValidateRunName checks a new run's name: 1 to MaxRunNameLength
// characters from the safe alphabet (ASCII letters, digits, '.', '_' and
// '-'), starting with a letter or a digit. The alphabet is a subset of
// VAST's (which refuses only some punctuation and spaces), chosen so that
// two names never look alike: without non-ASCII letters there is no
// invisible character, no look-alike letter from another script, no
// right-to-left text and no composed/decomposed pair of one letter. A name
// may not start with '.', '_' or '-', so that it is never taken for a
// hidden file or a command-line flag. Case is kept: "Run1" and "run1" are
// two runs, as in VAST, since they show differently.
//
// Only new names are checked: runs created under older rules keep their
// names.
func ValidateRunName(name string) error {
	return validateName("run name", name, MaxRunNameLength)
}

// validateName applies the safe alphabet of run and user names.
func validateName(what, name string, max int) error {
	const rule = "use only ASCII letters, digits, '.', '_' and '-', starting with a letter or a digit"
	switch {
	case name == "":
		return errorf(ErrInvalid, "%s is empty; %s", what, rule)
	case utf8.RuneCountInString(name) > max:
		return errorf(ErrInvalid, "%s is %d characters long; at most %d are allowed", what, utf8.RuneCountInString(name), max)
	}
	pos := 0
	for i, c := range name {
		pos++
		if isNameChar(c) && (pos > 1 || isAlnum(c)) {
			continue
		}
		if c == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(name[i:]); size == 1 {
				return errorf(ErrInvalid, "%s %+q is not valid UTF-8 (byte 0x%02X at position %d); %s", what, name, name[i], pos, rule)
			}
		}
		if pos == 1 && isNameChar(c) {
			return errorf(ErrInvalid, "%s %+q starts with %q; %s", what, name, c, rule)
		}
		return errorf(ErrInvalid, "%s %+q has character %s at position %d, which is not allowed; %s", what, name, describeName(c), pos, rule)
	}
	return nil
}

func isAlnum(c rune) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isNameChar(c rune) bool { return isAlnum(c) || c == '.' || c == '_' || c == '-' }

// describeName names a character refused in a name: printable ASCII
// quoted, anything else by code point.
func describeName(c rune) string {
	if c > ' ' && c < 0x7f {
		return fmt.Sprintf("%q", c)
	}
	if c == ' ' {
		return "' ' (space)"
	}
	return describeRune(c)
}

// ValidateDescription applies VAST's limit on run descriptions and refuses
// the characters that do not show or change how the text around them
// shows (see HiddenRune), tab and newline included: a description is one
// line, shown in the columns of `piperun list` and on a line of `piperun
// status`, where a newline or a carriage return could forge a line and a
// tab shifts the columns; the page's description field is a one-line
// input, so no one typing in it can send either.
func ValidateDescription(d string) error {
	if n := utf8.RuneCountInString(d); n > MaxDescriptionRunes {
		return errorf(ErrInvalid, "description is %d characters long; at most %d are allowed", n, MaxDescriptionRunes)
	}
	if pos, r := firstHidden(d); pos > 0 {
		if r == utf8.RuneError {
			return errorf(ErrInvalid, "description: invalid UTF-8 at position %d", pos)
		}
		return errorf(ErrInvalid, "description: character %s at position %d is not allowed (no control, format, invisible or line-separator characters)", describeRune(r), pos)
	}
	return nil
}
