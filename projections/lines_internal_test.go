package projections

import (
	"encoding/json"
	"testing"
)

// TestLinesJSONIsEncodingJSON checks the stored form of log lines against
// encoding/json's, byte for byte.
func TestLinesJSONIsEncodingJSON(t *testing.T) {
	var every []string
	for c := range 256 {
		every = append(every, "line "+string(rune(c))+" end", "byte "+string([]byte{byte(c)}))
	}
	cases := [][]string{
		nil,
		{},
		{""},
		{"2024-05-01 12:00:00,000 INFO reading images", "2024-05-01 12:00:01,000 DEBUG 3 of 5 done"},
		{"quote \" backslash \\ slash / tab \t newline \n"},
		{"<script>&amp;</script>"},
		{"é ü 日本 😀", "line\u2028separator\u2029", "invalid \xff\xfe utf-8"},
		{"\x7f delete", "\x00 nul"},
		every,
	}
	for _, lines := range cases {
		want, err := json.Marshal(lines)
		if err != nil {
			t.Fatal(err)
		}
		got, err := linesJSON(lines)
		if err != nil {
			t.Fatal(err)
		}
		if got != string(want) {
			t.Errorf("linesJSON(%q) = %s, encoding/json gives %s", lines, got, want)
		}
	}
	for c := range 256 {
		lines := []string{"a" + string([]byte{byte(c)}) + "b"}
		want, _ := json.Marshal(lines)
		if got, _ := linesJSON(lines); got != string(want) {
			t.Errorf("byte %#x: linesJSON = %s, encoding/json gives %s", c, got, want)
		}
	}
}
