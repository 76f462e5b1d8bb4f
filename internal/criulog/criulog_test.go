package criulog

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestCriuErrors(t *testing.T) {
	p := filepath.Join(t.TempDir(), "restore.log")
	log := "(00.000001) Version: 3.17.1\n" +
		"(00.002618) Error (criu/util.c:642): exited, status=1\n" +
		"(00.020932) Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds\n" +
		"(00.020935) Error (criu/vdso.c:613): vdso: Failed to fill self vdso symtable\n" +
		"(00.020935) Error (criu/vdso.c:613): vdso: Failed to fill self vdso symtable\n" +
		"(00.020937) Error (criu/kerndat.c:1615): kerndat_vdso_fill_symtable failed when initializing kerndat.\n" +
		"(00.020979) Adjust mmap_min_addr 0x1000 -> 0x10000\n" +
		"(00.030000) Error (criu/cr-restore.c:1): Restoring FAILED.\n"
	os.WriteFile(p, []byte(log), 0o644)
	want := "vdso: Failed to fill self vdso symtable; kerndat_vdso_fill_symtable failed when initializing kerndat.; Restoring FAILED."
	if got := FileErrors(p); got != want {
		t.Errorf("FileErrors = %q\nwant %q", got, want)
	}
	if got := FileErrors(filepath.Join(t.TempDir(), "none")); got != "" {
		t.Errorf("FileErrors of a missing log = %q", got)
	}
}

// TestFileErrorsBounded: a log larger than MaxRead is read from its end
// only; a symlink or a FIFO is not read.
func TestFileErrorsBounded(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "restore.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("(00.1) Error (criu/a.c:1): early\n")
	line := []byte("(00.1) a line of a verbose log, not an error\n")
	for n := 0; n < 2*MaxRead; n += len(line) {
		f.Write(line)
	}
	f.WriteString("(00.2) Error (criu/b.c:2): late\n")
	f.Close()
	if got := FileErrors(path); got != "late" {
		t.Errorf("FileErrors = %q, want %q", got, "late")
	}
	link := filepath.Join(dir, "link.log")
	os.Symlink(path, link)
	if got := FileErrors(link); got != "" {
		t.Errorf("through a symlink: %q", got)
	}
	fifo := filepath.Join(dir, "fifo.log")
	unix.Mkfifo(fifo, 0o600)
	if got := FileErrors(fifo); got != "" {
		t.Errorf("a FIFO: %q", got)
	}
}
