package domain

import "testing"

func TestShortIDTellsApartIDsOfOneMinute(t *testing.T) {
	// Two UUIDv7 made within the same second: same clock digits.
	a := "01938a2c-4b1e-7c3d-8e4f-5a6b7c8d9e0f"
	b := "01938a2c-4b1e-7f00-9abc-0123456789ab"
	if ShortID(a) == ShortID(b) {
		t.Fatalf("ShortID(%s) = ShortID(%s) = %s", a, b, ShortID(a))
	}
	if got, want := ShortID(a), "5a6b7c8d9e0f"; got != want {
		t.Errorf("ShortID(%s) = %q, want %q", a, got, want)
	}
	for _, id := range []string{"", "job-1", "01938a2c4b1e7c3d8e4f5a6b7c8d9e0f"} {
		if got := ShortID(id); got != id {
			t.Errorf("ShortID(%q) = %q, want it unchanged", id, got)
		}
	}
}
