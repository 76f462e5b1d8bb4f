package cri

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Container logs in the CRI log format ("TIMESTAMP STREAM P|F LINE"), at the
// path the kubelet gives, copied from the container's processes/init/stdout.follow
// and stderr streams of the tree. The position copied so far is kept in
// <state>/logs/ID.json (at most once a second, and at the end), so that a
// restart of this server resumes the copy instead of starting it over.

// logPos is how far the copy of each stream went, and whether it is done.
type logPos struct {
	Stdout int64 `json:"stdout"`
	Stderr int64 `json:"stderr"`
	Done   bool  `json:"done"`
}

// maxLogLine is the longest line written whole: longer ones are split into
// partial (P) records.
const maxLogLine = 16 << 10

type logCopier struct {
	s    *Server
	id   string
	path string

	mu    sync.Mutex
	f     *os.File
	pos   logPos
	saved time.Time
	stop  chan struct{}
	once  sync.Once
}

func (s *Server) posFile(id string) string { return filepath.Join(s.cfg.StateDir, "logs", id+".json") }

// startLog starts copying the container's streams into path, skipping what
// pos says was copied already.
func (s *Server) startLog(id, path string, pos logPos) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.logs[id]; ok || pos.Done {
		return
	}
	lc := &logCopier{s: s, id: id, path: path, pos: pos, stop: make(chan struct{})}
	if err := lc.open(); err != nil {
		s.log.WithError(err).WithField("id", id).Warn("cannot open the container's log")
		return
	}
	s.logs[id] = lc
	var wg sync.WaitGroup
	for _, stream := range []string{"stdout", "stderr"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lc.copy(stream)
		}()
	}
	go func() {
		wg.Wait()
		lc.mu.Lock()
		select {
		case <-lc.stop:
		default:
			lc.pos.Done = true
			lc.save()
		}
		lc.f.Close()
		lc.mu.Unlock()
	}()
}

func (lc *logCopier) open() error {
	f, err := os.OpenFile(lc.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	lc.f = f
	return nil
}

// save records the position (under mu).
func (lc *logCopier) save() {
	b, _ := json.Marshal(lc.pos)
	tmp := lc.s.posFile(lc.id) + ".tmp"
	if os.WriteFile(tmp, b, 0o600) == nil {
		os.Rename(tmp, lc.s.posFile(lc.id))
	}
	lc.saved = time.Now()
}

// copy follows one stream until its EOF (the process exited) or a stop.
func (lc *logCopier) copy(stream string) {
	f, err := os.Open(lc.s.t.path(lc.id, "processes", "init", stream+".follow"))
	if err != nil {
		return
	}
	defer f.Close()
	go func() { <-lc.stop; f.Close() }()
	lc.mu.Lock()
	skip := lc.pos.Stdout
	if stream == "stderr" {
		skip = lc.pos.Stderr
	}
	lc.mu.Unlock()
	if skip > 0 {
		io.CopyN(io.Discard, f, skip)
	}
	var line []byte
	buf := make([]byte, 32<<10)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			line = lc.write(stream, append(line, buf[:n]...), false)
		}
		if err != nil {
			select {
			case <-lc.stop:
				return
			default:
			}
			if err == io.EOF && len(line) > 0 {
				lc.write(stream, line, true)
			}
			return
		}
	}
}

// write logs the complete lines of data and returns what is left (a line
// not yet ended); at the end (last) the rest is logged as a whole line.
func (lc *logCopier) write(stream string, data []byte, last bool) []byte {
	var out bytes.Buffer
	in := int64(len(data))
	ts := time.Now().Format(time.RFC3339Nano)
	for {
		i := bytes.IndexByte(data, '\n')
		switch {
		case i >= 0 && i <= maxLogLine:
			out.WriteString(ts + " " + stream + " F ")
			out.Write(data[:i+1])
			data = data[i+1:]
			continue
		case len(data) > maxLogLine:
			out.WriteString(ts + " " + stream + " P ")
			out.Write(data[:maxLogLine])
			out.WriteByte('\n')
			data = data[maxLogLine:]
			continue
		case last && len(data) > 0:
			out.WriteString(ts + " " + stream + " F ")
			out.Write(data)
			out.WriteByte('\n')
			data = nil
		}
		break
	}
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if out.Len() > 0 {
		lc.f.Write(out.Bytes())
	}
	// The position counts the bytes logged: an unended line is read
	// again on a resume.
	if stream == "stdout" {
		lc.pos.Stdout += in - int64(len(data))
	} else {
		lc.pos.Stderr += in - int64(len(data))
	}
	if time.Since(lc.saved) > time.Second {
		lc.save()
	}
	return data
}

// reopenLog reopens the container's log file (ReopenContainerLog).
func (s *Server) reopenLog(id string) error {
	s.mu.Lock()
	lc := s.logs[id]
	s.mu.Unlock()
	if lc == nil {
		return nil
	}
	lc.mu.Lock()
	defer lc.mu.Unlock()
	old := lc.f
	if err := lc.open(); err != nil {
		return err
	}
	return old.Close()
}

// stopLog stops the container's copier and forgets its position.
func (s *Server) stopLog(id string) {
	s.mu.Lock()
	lc := s.logs[id]
	delete(s.logs, id)
	s.mu.Unlock()
	if lc != nil {
		lc.once.Do(func() { close(lc.stop) })
	}
	os.Remove(s.posFile(id))
}

// resumeLogs restarts the copiers of the containers the tree has, from
// their recorded positions; positions of containers gone are removed.
func (s *Server) resumeLogs() {
	have := map[string]bool{}
	for _, c := range s.objects("container") {
		have[c.ID] = true
		if c.M.LogPath == "" {
			continue
		}
		var pos logPos
		if b, err := os.ReadFile(s.posFile(c.ID)); err == nil {
			json.Unmarshal(b, &pos)
		}
		s.startLog(c.ID, c.M.LogPath, pos)
	}
	ents, _ := os.ReadDir(filepath.Join(s.cfg.StateDir, "logs"))
	for _, e := range ents {
		id := e.Name()
		if filepath.Ext(id) == ".json" && !have[id[:len(id)-5]] {
			os.Remove(filepath.Join(s.cfg.StateDir, "logs", id))
		}
	}
}
