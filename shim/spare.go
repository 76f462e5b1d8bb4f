package shim

import (
	"bufio"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// WaitForDir is how a spare shim learns its directory: the daemon starts a
// shim ahead of need, so that the exec and the Go start-up (~10 ms) are not
// on the path of a create, and later hands it the process directory as one
// line on stdin. ok is false when stdin closes first: the daemon is gone or does not
// need a spare any more, and the shim should just exit.
func WaitForDir(stdin *os.File) (dir string, ok bool) {
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil {
		return "", false
	}
	// Let go of the pipe: nothing after this reads it, and nothing the shim
	// starts should inherit it.
	// Should it fail, the shim keeps a pipe nobody writes to any more:
	// harmless, as runc is given its stdin explicitly.
	if null, err := unix.Open(os.DevNull, unix.O_RDONLY, 0); err == nil {
		_ = unix.Dup2(null, int(stdin.Fd()))
		_ = unix.Close(null)
	}
	dir = strings.TrimSuffix(line, "\n")
	return dir, dir != ""
}
