// Package criulog reads CRIU's logs: the daemon reads a checkpoint's
// dump.log and `criu check`'s output, the shim a restore's restore.log.
package criulog

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"regexp"
	"strings"

	"golang.org/x/sys/unix"
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

// MaxRead is how much of a log file FileErrors reads: its end, where the
// errors that ended the run are. CRIU's logs rarely pass a few hundred KiB;
// a verbose one may grow without bound.
const MaxRead = 4 << 20

// FileErrors is Errors of the last MaxRead bytes of the log file at path
// ("" if it cannot be read). Only a regular file is read, and no symlink
// is followed.
func FileErrors(path string) string {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return ""
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close() // read only: nothing to lose
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return ""
	}
	from := st.Size() - MaxRead
	if from < 0 {
		from = 0
	}
	b, err := io.ReadAll(io.NewSectionReader(f, from, MaxRead))
	if err != nil {
		return ""
	}
	return Errors(b)
}
