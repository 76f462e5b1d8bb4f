package criulog

import (
	"os"
	"path/filepath"
	"testing"
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
