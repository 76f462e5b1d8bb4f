// Package criulog reads CRIU's logs: the daemon reads a checkpoint's
// dump.log and `criu check`'s output, the shim a restore's restore.log.
package criulog

import (
	"bufio"
	"bytes"
	"os"
	"regexp"
	"strings"
)

// errorLine matches an error line of a CRIU log or of `criu check`:
// "(00.020935) Error (criu/vdso.c:613): vdso: Failed to fill self vdso symtable".
var errorLine = regexp.MustCompile(`^(?:\([0-9.]+\) )?Error \([^)]*\): (.*)$`)

// Errors returns the last three distinct errors in a CRIU log, on one
// line joined by "; ", or "" when there are none.
func Errors(log []byte) string {
	var errs []string
	sc := bufio.NewScanner(bytes.NewReader(log))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		m := errorLine.FindStringSubmatch(strings.TrimSpace(sc.Text()))
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
	return strings.Join(strings.Fields(strings.Join(errs, "; ")), " ")
}

// FileErrors is Errors of the log file at path ("" if it cannot be read).
func FileErrors(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return Errors(b)
}
