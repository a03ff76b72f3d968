package vastdata

import (
	"os"
	"path/filepath"
	"testing"
)

func TestVASTDirHoldsTheEpochs(t *testing.T) {
	dir := VASTDir(t)
	if !filepath.IsAbs(dir) {
		t.Fatalf("VASTDir = %q, want an absolute path", dir)
	}
	for _, name := range []string{"epoch01.fits", "epoch01.selavy.components.txt", "epoch-invalid.selavy.components.txt"} {
		if _, err := os.Stat(filepath.Join(dir, "data", name)); err != nil {
			t.Errorf("data/%s: %v", name, err)
		}
	}
}

func TestModuleRootFindsGoMod(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	deep := filepath.Join(root, "a", "b")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := moduleRoot(deep)
	if err != nil || got != root {
		t.Fatalf("moduleRoot(%s) = %q, %v; want %q", deep, got, err, root)
	}
	if _, err := moduleRoot(filepath.Join(string(filepath.Separator), "nonexistent-dir-for-test")); err == nil {
		t.Fatal("moduleRoot without go.mod: want an error")
	}
}

func TestEnvDirOverridesTheLocation(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(EnvDir, dir)
	if _, err := findVASTDir(); err == nil {
		t.Fatalf("%s=%s without data/: want an error", EnvDir, dir)
	}
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := findVASTDir(); err != nil || got != dir {
		t.Fatalf("findVASTDir = %q, %v; want %q", got, err, dir)
	}
}
