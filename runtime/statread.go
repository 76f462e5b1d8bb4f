package runtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// statReader reads cgroup files into one reused buffer, with as few system
// calls as it can (pread of a kept file, or open, read, close: no stat),
// and keeps the first error. The data a read returns is valid until the
// next read.
type statReader struct {
	buf   *[]byte
	files *statFiles
	err   error
}

// file returns the content of dir/name, or nil. A missing optional file
// is no error: it is absent where a controller or kernel feature is.
func (r *statReader) file(dir, name string, optional bool) []byte {
	if dir == "" || r.err != nil {
		return nil
	}
	b, err := r.files.read(filepath.Join(dir, name), r.buf)
	if err != nil {
		if !(optional && errors.Is(err, fs.ErrNotExist)) {
			r.err = err
		}
		return nil
	}
	return b
}

// uint reads a file holding one number ("max" reads as max).
func (r *statReader) uint(dir, name string, optional bool, max uint64) uint64 {
	b := r.file(dir, name, optional)
	if b == nil {
		return 0
	}
	v, err := parseCgroupUint(b, max)
	if err != nil {
		r.fail(dir, name, err)
	}
	return v
}

// keyed reads a file of "key value" lines (memory.stat, cpu.stat ...) and
// calls set for each. It parses the bytes as they are: a string for each
// key would be most of a stats read's garbage.
func (r *statReader) keyed(dir, name string, optional bool, set func(key []byte, v uint64)) {
	b := r.file(dir, name, optional)
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		k, v, ok := bytes.Cut(bytes.TrimSpace(line), []byte{' '})
		if !ok {
			continue
		}
		n, err := parseDecimal(bytes.TrimSpace(v))
		if err != nil {
			r.fail(dir, name, err)
			return
		}
		set(k, n)
	}
}

func (r *statReader) fail(dir, name string, err error) {
	if r.err == nil {
		r.err = fmt.Errorf("%s: %v", filepath.Join(dir, name), err)
	}
}

// readFileInto reads a whole file into *buf, growing it when it fills. It
// uses the raw system calls: os.Open would register the file with the
// poller (cgroup files support poll), two more calls for each file.
func readFileInto(path string, buf *[]byte) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	n := 0
	for {
		if n == len(*buf) {
			*buf = append(*buf, make([]byte, len(*buf))...)
		}
		m, err := unix.Read(fd, (*buf)[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if m == 0 {
			return (*buf)[:n], nil
		}
		n += m
	}
}

// parseCgroupUint parses one number; "max" (no limit) parses as max.
func parseCgroupUint(b []byte, max uint64) (uint64, error) {
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return max, nil
	}
	return strconv.ParseUint(s, 10, 64)
}

// firstOf returns the first of keys present in c, or 0.
func firstOf(c *Counters, keys ...string) uint64 {
	for _, k := range keys {
		if v, ok := c.Get(k); ok {
			return v
		}
	}
	return 0
}

// parseDecimal parses an unsigned decimal number without allocating.
func parseDecimal(b []byte) (uint64, error) {
	if len(b) == 0 || len(b) > 20 {
		return 0, strconv.ErrSyntax
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, strconv.ErrSyntax
		}
		d := uint64(c - '0')
		if n > (math.MaxUint64-d)/10 {
			return 0, strconv.ErrRange
		}
		n = n*10 + d
	}
	return n, nil
}

// Counters are the "key value" lines of a cgroup file in the kernel's
// order; they encode as one JSON object.
type Counters struct {
	keys []string
	vals []uint64
}

// Get returns the value of key.
func (c *Counters) Get(key string) (uint64, bool) {
	for i, k := range c.keys {
		if k == key {
			return c.vals[i], true
		}
	}
	return 0, false
}

// Len is the number of counters.
func (c *Counters) Len() int { return len(c.keys) }

func (c *Counters) add(key []byte, v uint64) {
	c.keys = append(c.keys, internKey(key))
	c.vals = append(c.vals, v)
}

// MarshalJSON writes the counters as one object, in the kernel's order.
func (c Counters) MarshalJSON() ([]byte, error) {
	out := make([]byte, 0, 32*len(c.keys)+2)
	out = append(out, '{')
	for i, k := range c.keys {
		if i > 0 {
			out = append(out, ',')
		}
		out = appendJSONString(out, k)
		out = append(out, ':')
		out = strconv.AppendUint(out, c.vals[i], 10)
	}
	return append(out, '}'), nil
}

// appendJSONString appends s quoted for JSON: Go's quoting where it is
// JSON's too (printable ASCII, as the kernel's names are), else
// encoding/json's.
func appendJSONString(out []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			b, _ := json.Marshal(s)
			return append(out, b...)
		}
	}
	return strconv.AppendQuote(out, s)
}

// internKey returns key as a string, the same one every time: memory.stat
// names the same few dozen counters at every read. The table is bounded.
func internKey(key []byte) string {
	internMu.Lock()
	defer internMu.Unlock()
	if s, ok := interned[string(key)]; ok { // no allocation for the lookup
		return s
	}
	s := string(key)
	if len(interned) < maxInterned {
		interned[s] = s
	}
	return s
}

const maxInterned = 1024

var (
	internMu sync.Mutex
	interned = map[string]string{}
)
