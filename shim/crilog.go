package shim

import (
	"bytes"
	"os"
	"sync"
	"time"
)

// criLog writes the process's output a second time, in the CRI log format
// the kubelet and crictl read ("TIMESTAMP STREAM P|F LINE"), at the path
// the caller gave (Config.LogPath). The shim writes it, so the log does not
// depend on the daemon or any client running; reopen (the control op
// reopen-log) opens the path anew after the file was rotated away.
type criLog struct {
	mu   sync.Mutex
	path string
	f    *os.File
}

// maxCRILine is the longest line written as one record: longer ones are
// split into partial (P) records, as the kubelet's own runtimes do.
const maxCRILine = 16 << 10

func openCRILog(path string) (*criLog, error) {
	l := &criLog{path: path}
	if err := l.reopen(); err != nil {
		return nil, err
	}
	return l, nil
}

// reopen opens the path again (creating the file); the old file is closed
// only once the new one is open, so a failed reopen loses nothing.
func (l *criLog) reopen() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	l.mu.Lock()
	old := l.f
	l.f = f
	l.mu.Unlock()
	if old != nil {
		return old.Close()
	}
	return nil
}

func (l *criLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

// criStream is one stream's side of a criLog: it keeps the line not yet
// ended until its newline comes (or the stream ends).
type criStream struct {
	l    *criLog
	name string // "stdout" or "stderr"
	line []byte
}

// stream returns the writer of stream name, or nil for a nil log.
func (l *criLog) stream(name string) *criStream {
	if l == nil {
		return nil
	}
	return &criStream{l: l, name: name}
}

// write logs the complete lines of p; the rest waits for its end.
func (s *criStream) write(p []byte) {
	s.line = s.emit(append(s.line, p...), false)
}

// flush logs the unended last line whole, at the stream's end.
func (s *criStream) flush() {
	s.line = s.emit(s.line, true)
}

// emit writes the records of data and returns what is left (a line not
// yet ended); with last, that rest is written as a whole line too. Write
// errors are not the process's concern: they are dropped.
func (s *criStream) emit(data []byte, last bool) []byte {
	var out bytes.Buffer
	ts := time.Now().UTC().Format(time.RFC3339Nano)
	record := func(tag string, line []byte) {
		out.WriteString(ts + " " + s.name + " " + tag + " ")
		out.Write(line)
		out.WriteByte('\n')
	}
	for {
		i := bytes.IndexByte(data, '\n')
		switch {
		case i >= 0 && i <= maxCRILine:
			record("F", data[:i])
			data = data[i+1:]
			continue
		case len(data) > maxCRILine:
			record("P", data[:maxCRILine])
			data = data[maxCRILine:]
			continue
		case last && len(data) > 0:
			record("F", data)
			data = nil
		}
		break
	}
	if out.Len() > 0 {
		s.l.mu.Lock()
		s.l.f.Write(out.Bytes())
		s.l.mu.Unlock()
	}
	// Keep the rest in a buffer of its own: data may alias the copy's.
	return append([]byte(nil), data...)
}
