package shim

import (
	"bufio"
	"os"
	"regexp"
	"strings"
)

// criuError matches an error line of a CRIU log:
// "(00.020935) Error (criu/vdso.c:613): vdso: Failed to fill self vdso symtable".
var criuError = regexp.MustCompile(`^(?:\([0-9.]+\) )?Error \([^)]*\): (.*)$`)

// criuErrors returns the last few distinct errors of the CRIU log at path,
// on one line, or "". The daemon has its own copy for dump.log: the shim
// shares nothing with it but package proto.
func criuErrors(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var errs []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		m := criuError.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		// "exited, status=1" is a helper's exit, said again by the error
		// that follows it.
		if m == nil || strings.HasPrefix(m[1], "exited, status=") {
			continue
		}
		if len(errs) == 0 || errs[len(errs)-1] != m[1] {
			errs = append(errs, m[1])
		}
	}
	if len(errs) > 3 {
		errs = errs[len(errs)-3:]
	}
	return oneLine(strings.Join(errs, "; "))
}
