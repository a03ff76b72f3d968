package cli

import (
	"os"
	"testing"
)

// TestPositionFile: the remembered position only rises, is kept per
// server, and a file that does not hold a position counts as none.
func TestPositionFile(t *testing.T) {
	dir := t.TempDir()
	a, b := positionFileFor(dir, "http://a:8080"), positionFileFor(dir, "http://b:8080")
	if a.path == b.path || positionFileFor(dir, "http://a:8080/").path != a.path {
		t.Fatalf("position files: %s for a, %s for b; want one per server, whatever its trailing slash", a.path, b.path)
	}
	if got := a.load(); got != 0 {
		t.Fatalf("position before any command: %d, want 0", got)
	}
	a.save(42)
	a.save(7)
	if got := a.load(); got != 42 {
		t.Fatalf("position after 42 then 7: %d, want 42", got)
	}
	if got := b.load(); got != 0 {
		t.Fatalf("another server's position: %d, want 0", got)
	}
	if err := os.WriteFile(b.path, []byte("not a number\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := b.load(); got != 0 {
		t.Fatalf("position from a garbled file: %d, want 0", got)
	}
	b.save(3)
	if got := b.load(); got != 3 {
		t.Fatalf("position saved over a garbled file: %d, want 3", got)
	}
	var none *positionFile
	none.save(1)
	if none.load() != 0 {
		t.Fatal("a missing position file remembers nothing")
	}
}
