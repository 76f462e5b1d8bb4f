package cri

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// Tree is the mounted ctrfs tree, used as any client uses it: files read and
// ctl lines written. Nothing here knows the daemon's insides.
type Tree struct {
	Root string // the mount point, e.g. /mnt/ctr
}

// TreeError is a ctl order the daemon refused: the errno of the write and
// the result line read back from the same open file.
type TreeError struct {
	Errno syscall.Errno
	Text  string
}

func (e *TreeError) Error() string { return e.Text }

// isErrno tells whether err is a refused order, or a file error, of errno.
func isErrno(err error, errno syscall.Errno) bool {
	var te *TreeError
	if errors.As(err, &te) {
		return te.Errno == errno
	}
	return errors.Is(err, errno)
}

func (t Tree) path(elem ...string) string { return filepath.Join(append([]string{t.Root}, elem...)...) }

// Ctl writes one order to the ctl file at elem (relative to the root) and,
// when the write fails, returns the daemon's result line with its errno.
func (t Tree) Ctl(line string, elem ...string) error {
	p := t.path(elem...)
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, werr := f.Write([]byte(line + "\n")); werr != nil {
		errno := syscall.EIO
		var pe *os.PathError
		if errors.As(werr, &pe) {
			if e, ok := pe.Err.(syscall.Errno); ok {
				errno = e
			}
		}
		buf := make([]byte, 64<<10)
		n, _ := f.ReadAt(buf, 0)
		text := strings.TrimSpace(string(buf[:n]))
		if i := strings.Index(text, "error: "); i >= 0 {
			text = strings.TrimSpace(strings.SplitN(text[i+len("error: "):], "\n", 2)[0])
		}
		if text == "" {
			text = werr.Error()
		}
		return &TreeError{Errno: errno, Text: text}
	}
	return nil
}

// Read reads a whole file of the tree.
func (t Tree) Read(elem ...string) ([]byte, error) { return os.ReadFile(t.path(elem...)) }

// ReadJSON reads a JSON file of the tree into v.
func (t Tree) ReadJSON(v any, elem ...string) error {
	b, err := t.Read(elem...)
	if err != nil {
		return err
	}
	if len(b) == 0 {
		return io.EOF
	}
	return json.Unmarshal(b, v)
}

// Containers lists the container directories of the tree.
func (t Tree) Containers() ([]string, error) {
	ents, err := os.ReadDir(t.Root)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range ents {
		switch e.Name() {
		case "ctl", "version", "events", "images", "ps":
			continue
		}
		if e.IsDir() {
			ids = append(ids, e.Name())
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// Status is the part of ID/status the CRI server uses.
type Status struct {
	ID          string            `json:"id"`
	State       string            `json:"state"`
	Pid         int               `json:"pid"`
	Bundle      string            `json:"bundle"`
	Created     string            `json:"created"`
	Started     string            `json:"started"`
	Exited      string            `json:"exited"`
	ExitStatus  *int              `json:"exit_status"`
	ExitReason  string            `json:"exit_reason"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	Resources   json.RawMessage   `json:"resources"`
}

// Status reads ID/status.
func (t Tree) Status(id string) (*Status, error) {
	var st Status
	if err := t.ReadJSON(&st, id, "status"); err != nil {
		return nil, err
	}
	return &st, nil
}

// quote makes s one word of a ctl line, whatever it holds (but a newline
// or a NUL, which no ctl line can carry).
func quote(s string) string {
	if s == "" {
		return "''"
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ctlLine joins words into a ctl line, each quoted.
func ctlLine(verb string, words ...string) string {
	var b strings.Builder
	b.WriteString(verb)
	for _, w := range words {
		b.WriteByte(' ')
		b.WriteString(quote(w))
	}
	return b.String()
}

// errNoLine is a word a ctl line cannot carry.
func checkWord(what, s string) error {
	if strings.ContainsAny(s, "\n\x00") {
		return fmt.Errorf("%s holds a newline or NUL", what)
	}
	return nil
}
