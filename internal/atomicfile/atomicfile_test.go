package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		data string
		perm os.FileMode
	}{
		{"a", "one\n", 0o600},
		{"a", "replaced\n", 0o644}, // over an existing file
		{"b", "", 0o640},
	} {
		path := filepath.Join(dir, c.name)
		if err := WriteFile(path, []byte(c.data), c.perm); err != nil {
			t.Fatalf("WriteFile(%s): %v", c.name, err)
		}
		st, err := os.Stat(path)
		if err != nil || st.Mode().Perm() != c.perm {
			t.Errorf("%s: mode %v, %v; want %v", c.name, st.Mode().Perm(), err, c.perm)
		}
		if got, _ := os.ReadFile(path); string(got) != c.data {
			t.Errorf("%s: content %q; want %q", c.name, got, c.data)
		}
	}
	// No temporary is left behind, on success or failure.
	if err := WriteFile(filepath.Join(dir, "no", "such", "dir"), nil, 0o600); err == nil {
		t.Error("WriteFile into a missing directory: no error")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("directory holds %d entries, want a and b only", len(entries))
	}
}

// A relative path is written in the current directory, as the shim does.
func TestWriteFileRelative(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := WriteFile("pid", []byte("1 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile("pid"); string(got) != "1 2\n" {
		t.Errorf("content %q", got)
	}
}
