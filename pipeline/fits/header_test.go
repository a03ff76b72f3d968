package fits

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// card pads s to one 80-character card.
func card(s string) string { return s + strings.Repeat(" ", 80-len(s)) }

// rawHeader builds a header from literal cards, adding END and padding.
func rawHeader(cards ...string) []byte {
	var b strings.Builder
	for _, c := range cards {
		b.WriteString(card(c))
	}
	b.WriteString(card("END"))
	for b.Len()%BlockSize != 0 {
		b.WriteByte(' ')
	}
	return []byte(b.String())
}

func TestReadHeaderValues(t *testing.T) {
	data := rawHeader(
		"SIMPLE  =                    T / conforms to FITS",
		"BITPIX  =                  -32",
		"NAXIS   =                    0",
		"STR     = 'O''Brien / not a comment' / real comment",
		"LEADSP  = '  lead'",
		"TRAILSP = 'trail    '",
		"EMPTY   = ''",
		"FLAG    =                    F",
		"NEG     =                  -42",
		"EXPE    =   4.166666666667E-03",
		"EXPD    =         1.5D+02 / double",
		"LOWER   =            2.5e-1",
		"NOFRAC  =                  3.",
		"UNDEF   =                      / undefined value",
		"CPLX    =           (1.0, 2.0)",
		"COMMENT this is a comment = 'with a quote'",
		"HISTORY more history",
		"",
		"NOEQUAL  5",
		"BAD     = 'unterminated",
		"STR     = 'second occurrence'",
	)
	h, err := ReadHeader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if h.Size() != int64(len(data)) {
		t.Errorf("Size = %d, want %d", h.Size(), len(data))
	}
	strs := map[string]string{
		"STR":     "O'Brien / not a comment",
		"LEADSP":  "  lead",
		"TRAILSP": "trail",
		"EMPTY":   "",
	}
	for k, want := range strs {
		if got, err := h.String(k); err != nil || got != want {
			t.Errorf("String(%s) = %q, %v; want %q", k, got, err, want)
		}
	}
	floats := map[string]float64{"EXPE": 4.166666666667e-03, "EXPD": 150, "LOWER": 0.25, "NOFRAC": 3, "NEG": -42, "BITPIX": -32}
	for k, want := range floats {
		if got, err := h.Float(k); err != nil || got != want {
			t.Errorf("Float(%s) = %v, %v; want %v", k, got, err, want)
		}
	}
	if got, err := h.Int("NEG"); err != nil || got != -42 {
		t.Errorf("Int(NEG) = %v, %v", got, err)
	}
	if got, err := h.Bool("SIMPLE"); err != nil || !got {
		t.Errorf("Bool(SIMPLE) = %v, %v", got, err)
	}
	if got, err := h.Bool("FLAG"); err != nil || got {
		t.Errorf("Bool(FLAG) = %v, %v", got, err)
	}
	if v, err := h.Value("UNDEF"); err != nil || v != nil {
		t.Errorf("Value(UNDEF) = %v, %v; want nil, nil", v, err)
	}
	if v, _ := h.Value("CPLX"); v != RawValue("(1.0, 2.0)") {
		t.Errorf("Value(CPLX) = %#v", v)
	}
	if v, _ := h.Value("BAD"); v != RawValue("'unterminated") {
		t.Errorf("Value(BAD) = %#v", v)
	}
	if h.Has("COMMENT") || h.Has("NOEQUAL") {
		t.Error("commentary cards must not be value cards")
	}
	cards := h.Cards()
	if cards[3].Comment != "real comment" {
		t.Errorf("STR comment = %q", cards[3].Comment)
	}
	if cards[15].Key != "COMMENT" || cards[15].Comment != "this is a comment = 'with a quote'" {
		t.Errorf("COMMENT card = %#v", cards[15])
	}

	badTypes := []struct {
		name string
		get  func() error
	}{
		{"Float of string", func() error { _, err := h.Float("STR"); return err }},
		{"Int of real", func() error { _, err := h.Int("EXPE"); return err }},
		{"Bool of int", func() error { _, err := h.Bool("NEG"); return err }},
		{"String of logical", func() error { _, err := h.String("FLAG"); return err }},
		{"Float of undefined", func() error { _, err := h.Float("UNDEF"); return err }},
		{"Float of complex", func() error { _, err := h.Float("CPLX"); return err }},
	}
	for _, tt := range badTypes {
		if err := tt.get(); !errors.Is(err, ErrBadValue) {
			t.Errorf("%s: err = %v, want ErrBadValue", tt.name, err)
		}
	}
	_, err = h.Float("BMAJ")
	if !errors.Is(err, ErrMissingKeyword) || !strings.Contains(err.Error(), "BMAJ") {
		t.Errorf("Float(BMAJ) = %v, want ErrMissingKeyword naming BMAJ", err)
	}
	if got, err := h.FloatOr("BMAJ", 7); err != nil || got != 7 {
		t.Errorf("FloatOr(missing) = %v, %v", got, err)
	}
}

func TestReadHeaderFirstOccurrenceWins(t *testing.T) {
	h, err := ReadHeader(bytes.NewReader(rawHeader("SIMPLE  =                    T", "A       =                    1", "A       =                    2")))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := h.Int("A"); v != 1 {
		t.Fatalf("A = %d, want the first value 1", v)
	}
}

func TestReadHeaderLeavesReaderAtData(t *testing.T) {
	data := append(rawHeader("SIMPLE  =                    T"), []byte("DATA")...)
	r := bytes.NewReader(data)
	if _, err := ReadHeader(r); err != nil {
		t.Fatal(err)
	}
	rest := make([]byte, 8)
	n, _ := r.Read(rest)
	if string(rest[:n]) != "DATA" {
		t.Fatalf("after header: %q", rest[:n])
	}
}

func TestReadHeaderErrors(t *testing.T) {
	noEnd := []byte(card("SIMPLE  =                    T") + strings.Repeat(" ", BlockSize-80))
	tests := []struct {
		name string
		data []byte
		want error
		text string
	}{
		{name: "empty", data: nil, want: ErrNotFITS},
		{name: "short", data: []byte("SIMPLE  =                    T"), want: ErrNotFITS},
		{name: "not simple", data: rawHeader("XTENSION= 'IMAGE   '"), want: ErrNotFITS},
		{name: "no END", data: noEnd, text: "no END"},
		{name: "binary byte", data: rawHeader("SIMPLE  =                    T", "BAD     = 'caf\xc3\xa9'"), text: "not printable ASCII"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadHeader(bytes.NewReader(tt.data))
			if err == nil {
				t.Fatal("want an error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.text) {
				t.Errorf("err = %q, want it to mention %q", err, tt.text)
			}
		})
	}
}

func TestEncodeHeaderRoundTrip(t *testing.T) {
	in := []Card{
		{Key: "SIMPLE", Value: true, Comment: "conforms"},
		{Key: "BITPIX", Value: -32},
		{Key: "NAXIS", Value: int64(0)},
		{Key: "OBJECT", Value: "it's here"},
		{Key: "SHORT", Value: "ab"},
		{Key: "CDELT1", Value: -5.555555555556e-04},
		{Key: "CRVAL3", Value: 8.88e8},
		{Key: "WHOLE", Value: 3.0},
		{Key: "TINY", Value: 1e-300},
		{Key: "NO", Value: false},
		{Key: "HISTORY", Comment: "made by a test"},
	}
	data, err := EncodeHeader(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(data)%BlockSize != 0 {
		t.Fatalf("encoded length %d is not whole blocks", len(data))
	}
	h, err := ReadHeader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	out := h.Cards()
	if len(out) != len(in) {
		t.Fatalf("read %d cards, wrote %d", len(out), len(in))
	}
	for i, c := range in {
		want := c.Value
		if v, ok := want.(int); ok {
			want = int64(v)
		}
		if out[i].Key != c.Key || out[i].Value != want || out[i].Comment != c.Comment {
			t.Errorf("card %d: read %#v, wrote %#v", i, out[i], c)
		}
	}
}

func TestEncodeHeaderRejects(t *testing.T) {
	bad := []Card{
		{Key: "TOOLONGKEY", Value: 1},
		{Key: "lower", Value: 1},
		{Key: "S", Value: strings.Repeat("x", 80)},
		{Key: "NAN", Value: 0 * func() float64 { var z float64; return 1 / z }()},
		{Key: "U", Value: uint8(1)},
		{Key: "S", Value: "caf\u00e9"},
	}
	for _, c := range bad {
		if _, err := EncodeHeader([]Card{c}); err == nil {
			t.Errorf("EncodeHeader(%#v): want an error", c)
		}
	}
}
