package fits

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// BlockSize is the FITS logical record length.
const BlockSize = 2880

const cardSize = 80

// maxCards bounds the header size so that a file without an END card cannot
// make a reader consume unbounded memory.
const maxCards = 1 << 17

// Sentinel errors, wrapped with the keyword or file concerned.
var (
	// ErrNotFITS means the data does not start with a FITS primary header.
	ErrNotFITS = errors.New("not a FITS file")
	// ErrMissingKeyword means a required keyword is absent from the header.
	ErrMissingKeyword = errors.New("missing keyword")
	// ErrBadValue means a keyword's value has the wrong type or cannot be
	// parsed.
	ErrBadValue = errors.New("bad keyword value")
)

// MaxAxisLength bounds every NAXISn the package accepts: far beyond any
// survey image (ASKAP's are some 16k pixels a side), and small enough that
// no header can make a reader plan terabytes.
const MaxAxisLength = 1 << 20

// invalid reports a number that a keyword cannot hold, naming the keyword
// and the value: "keyword BMAJ = 0: must be positive".
func invalid(key string, v float64, rule string) error {
	return fmt.Errorf("keyword %s = %s: %s: %w", key, strconv.FormatFloat(v, 'g', -1, 64), rule, ErrBadValue)
}

// finite returns an error unless v is finite.
func finite(key string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return invalid(key, v, "must be finite")
	}
	return nil
}

// positive returns an error unless v is finite and above zero.
func positive(key string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
		return invalid(key, v, "must be positive and finite")
	}
	return nil
}

// within returns an error unless v is finite and in [lo, hi].
func within(key string, v, lo, hi float64) error {
	if !(v >= lo && v <= hi) {
		return invalid(key, v, fmt.Sprintf("must be within [%g, %g]", lo, hi))
	}
	return nil
}

// RawValue holds the text of a value that is not a string, logical, integer
// or real number (a complex number, or malformed).
type RawValue string

// Card is one header record.
type Card struct {
	// Key is the keyword, without trailing blanks ("" for blank cards).
	Key string
	// Value is string, bool, int64, float64, RawValue, or nil for
	// commentary cards and undefined values.
	Value any
	// Comment is the text after the value's "/" or, for commentary cards
	// (COMMENT, HISTORY, blank, any card without "= "), the card's text.
	Comment string
}

// Header is a parsed primary header.
type Header struct {
	cards []Card
	index map[string]int
	size  int64
}

// ReadHeader reads a primary header from r, consuming exactly its 2880-byte
// blocks, so that r is left at the start of the data.
func ReadHeader(r io.Reader) (*Header, error) {
	h := &Header{index: make(map[string]int)}
	block := make([]byte, BlockSize)
	for {
		if _, err := io.ReadFull(r, block); err != nil {
			if h.size == 0 && (err == io.EOF || err == io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("%w: shorter than one %d-byte block", ErrNotFITS, BlockSize)
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return nil, fmt.Errorf("header has no END card before the end of the file")
			}
			return nil, err
		}
		h.size += BlockSize
		for off := 0; off < BlockSize; off += cardSize {
			raw := block[off : off+cardSize]
			n := len(h.cards)
			if n == 0 && !bytes.HasPrefix(raw, []byte("SIMPLE  =")) {
				return nil, fmt.Errorf("%w: first card is not SIMPLE", ErrNotFITS)
			}
			if n >= maxCards {
				return nil, fmt.Errorf("header has no END card in its first %d cards", maxCards)
			}
			for i, c := range raw {
				if c < 0x20 || c > 0x7e {
					return nil, fmt.Errorf("card %d: byte 0x%02x at column %d is not printable ASCII", n+1, c, i+1)
				}
			}
			card := parseCard(string(raw))
			if card.Key == "END" && card.Value == nil && strings.TrimSpace(string(raw[3:])) == "" {
				return h, nil
			}
			if card.Value != nil || isValueCard(string(raw)) {
				// The first occurrence wins, as in astropy.
				if _, dup := h.index[card.Key]; !dup {
					h.index[card.Key] = n
				}
			}
			h.cards = append(h.cards, card)
		}
	}
}

// Size returns the length in bytes of the header blocks, i.e. the offset of
// the data.
func (h *Header) Size() int64 { return h.size }

// Cards returns the header's cards in order, without END.
func (h *Header) Cards() []Card { return h.cards }

// Has reports whether key is present as a value card.
func (h *Header) Has(key string) bool {
	_, ok := h.index[key]
	return ok
}

// Value returns the value of key, or an error wrapping ErrMissingKeyword.
func (h *Header) Value(key string) (any, error) {
	i, ok := h.index[key]
	if !ok {
		return nil, fmt.Errorf("keyword %s: %w", key, ErrMissingKeyword)
	}
	return h.cards[i].Value, nil
}

// String returns a string value, without its trailing blanks (which FITS
// says are not significant).
func (h *Header) String(key string) (string, error) {
	v, err := h.Value(key)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("keyword %s: value %v is not a string: %w", key, describe(v), ErrBadValue)
	}
	return s, nil
}

// Float returns a real or integer value as a float64.
func (h *Header) Float(key string) (float64, error) {
	v, err := h.Value(key)
	if err != nil {
		return 0, err
	}
	switch x := v.(type) {
	case float64:
		return x, nil
	case int64:
		return float64(x), nil
	}
	return 0, fmt.Errorf("keyword %s: value %v is not a number: %w", key, describe(v), ErrBadValue)
}

// FloatOr returns the number under key, or def when key is absent.
func (h *Header) FloatOr(key string, def float64) (float64, error) {
	if !h.Has(key) {
		return def, nil
	}
	return h.Float(key)
}

// Int returns an integer value.
func (h *Header) Int(key string) (int64, error) {
	v, err := h.Value(key)
	if err != nil {
		return 0, err
	}
	if x, ok := v.(int64); ok {
		return x, nil
	}
	return 0, fmt.Errorf("keyword %s: value %v is not an integer: %w", key, describe(v), ErrBadValue)
}

// Bool returns a logical value.
func (h *Header) Bool(key string) (bool, error) {
	v, err := h.Value(key)
	if err != nil {
		return false, err
	}
	if x, ok := v.(bool); ok {
		return x, nil
	}
	return false, fmt.Errorf("keyword %s: value %v is not logical: %w", key, describe(v), ErrBadValue)
}

func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "(undefined)"
	case string:
		return strconv.Quote(x)
	case RawValue:
		return strconv.Quote(string(x))
	}
	return fmt.Sprint(v)
}

// isValueCard reports whether the card has the value indicator "= " in
// columns 9-10.
func isValueCard(raw string) bool {
	return len(raw) >= 10 && raw[8:10] == "= "
}

// parseCard never fails: a value that cannot be parsed is kept as a
// RawValue, so that a bad card only matters if someone asks for it.
func parseCard(raw string) Card {
	key := strings.TrimRight(raw[:8], " ")
	if !isValueCard(raw) {
		return Card{Key: key, Comment: strings.TrimRight(raw[8:], " ")}
	}
	field := raw[10:]
	trimmed := strings.TrimLeft(field, " ")
	if strings.HasPrefix(trimmed, "'") {
		s, rest, ok := parseString(trimmed[1:])
		if !ok {
			return Card{Key: key, Value: RawValue(strings.TrimSpace(field))}
		}
		return Card{Key: key, Value: s, Comment: commentOf(rest)}
	}
	text, comment, _ := strings.Cut(field, "/")
	text = strings.TrimSpace(text)
	card := Card{Key: key, Comment: strings.TrimSpace(comment)}
	if text != "" {
		card.Value = parseScalar(text)
	}
	return card
}

// parseString reads a quoted string whose opening quote has been consumed;
// a doubled quote stands for one quote.
func parseString(s string) (value, rest string, ok bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\'' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '\'' {
			b.WriteByte('\'')
			i++
			continue
		}
		return strings.TrimRight(b.String(), " "), s[i+1:], true
	}
	return "", "", false
}

func commentOf(rest string) string {
	_, c, ok := strings.Cut(rest, "/")
	if !ok {
		return ""
	}
	return strings.TrimSpace(c)
}

func parseScalar(text string) any {
	switch text {
	case "T":
		return true
	case "F":
		return false
	}
	if i, err := strconv.ParseInt(text, 10, 64); err == nil {
		return i
	}
	if isRealSyntax(text) {
		// FITS allows a D exponent for double precision.
		f, err := strconv.ParseFloat(strings.NewReplacer("D", "E", "d", "e").Replace(text), 64)
		// Underflow to zero is harmless; overflow to infinity is not a value.
		if err == nil || errors.Is(err, strconv.ErrRange) && !math.IsInf(f, 0) {
			return f
		}
	}
	return RawValue(text)
}

// isRealSyntax accepts FITS fixed-format reals: sign, digits, optional
// point and fraction, optional E or D exponent. It rejects what ParseFloat
// would also take but FITS does not, such as "Inf", "NaN", hex and "_".
func isRealSyntax(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			digits++
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(s) && strings.ContainsRune("EeDd", rune(s[i])) {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		exp := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			exp++
		}
		if exp == 0 {
			return false
		}
	}
	return i == len(s)
}

// EncodeHeader formats cards as a primary header: 80-character cards, END,
// and blank padding to a whole number of blocks. Values may be string, bool,
// int, int64, float64 or nil (a commentary card). It is the inverse of
// ReadHeader for the values it supports; strings longer than one card are
// not (CONTINUE is not supported).
func EncodeHeader(cards []Card) ([]byte, error) {
	var buf bytes.Buffer
	for _, c := range cards {
		line, err := formatCard(c)
		if err != nil {
			return nil, err
		}
		buf.WriteString(line)
	}
	buf.WriteString(fmt.Sprintf("%-80s", "END"))
	if pad := buf.Len() % BlockSize; pad != 0 {
		buf.Write(bytes.Repeat([]byte(" "), BlockSize-pad))
	}
	return buf.Bytes(), nil
}

func formatCard(c Card) (string, error) {
	if len(c.Key) > 8 {
		return "", fmt.Errorf("keyword %q is longer than 8 characters", c.Key)
	}
	for _, r := range c.Key {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return "", fmt.Errorf("keyword %q: character %q not allowed", c.Key, r)
		}
	}
	var val string
	switch v := c.Value.(type) {
	case nil:
		line := fmt.Sprintf("%-8s%s", c.Key, c.Comment)
		if len(line) > cardSize {
			return "", fmt.Errorf("keyword %s: commentary longer than one card", c.Key)
		}
		return checkASCII(fmt.Sprintf("%-80s", line), c.Key)
	case string:
		q := strings.ReplaceAll(v, "'", "''")
		val = fmt.Sprintf("'%-8s'", q)
		if len(val) < 20 {
			val = fmt.Sprintf("%-20s", val)
		}
	case bool:
		val = fmt.Sprintf("%20s", map[bool]string{true: "T", false: "F"}[v])
	case int:
		val = fmt.Sprintf("%20d", v)
	case int64:
		val = fmt.Sprintf("%20d", v)
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return "", fmt.Errorf("keyword %s: %v cannot be written in FITS", c.Key, v)
		}
		s := strconv.FormatFloat(v, 'G', -1, 64)
		if !strings.ContainsAny(s, ".E") {
			s += "."
		}
		val = fmt.Sprintf("%20s", s)
	default:
		return "", fmt.Errorf("keyword %s: unsupported value type %T", c.Key, c.Value)
	}
	line := fmt.Sprintf("%-8s= %s", c.Key, val)
	if c.Comment != "" {
		line += " / " + c.Comment
	}
	if len(line) > cardSize {
		return "", fmt.Errorf("keyword %s: card longer than %d characters", c.Key, cardSize)
	}
	return checkASCII(fmt.Sprintf("%-80s", line), c.Key)
}

func checkASCII(line, key string) (string, error) {
	for i := 0; i < len(line); i++ {
		if line[i] < 0x20 || line[i] > 0x7e {
			return "", fmt.Errorf("keyword %s: non-printable or non-ASCII character", key)
		}
	}
	return line, nil
}
