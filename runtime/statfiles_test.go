package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestStatFilesKeepAndEvict(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "memory.usage_in_bytes")
	os.WriteFile(p, []byte("1\n"), 0o644)
	l := &statLRU{max: 2}
	a, b, c := &statFiles{}, &statFiles{}, &statFiles{}
	buf := make([]byte, 4)

	read := func(f *statFiles) string {
		t.Helper()
		l.touch(f)
		f.mu.Lock()
		defer f.mu.Unlock()
		got, err := f.read(p, &buf)
		if err != nil {
			t.Fatal(err)
		}
		return string(got)
	}
	if got := read(a); got != "1\n" || len(a.fds) != 1 {
		t.Fatalf("first read = %q, %d kept", got, len(a.fds))
	}
	// A kept file is read afresh from offset 0, and may have grown past
	// the buffer.
	os.WriteFile(p, []byte("123456789\n"), 0o644)
	if got := read(a); got != "123456789\n" {
		t.Errorf("second read = %q", got)
	}
	read(b)
	read(c) // a is the least recently read of three: released
	if a.kept.Load() || a.fds != nil {
		t.Errorf("a still keeps %d files after eviction", len(a.fds))
	}
	if !b.kept.Load() || !c.kept.Load() || len(l.order) != 2 {
		t.Errorf("b, c kept = %v, %v; %d in order", b.kept.Load(), c.kept.Load(), len(l.order))
	}
	// An evicted set reads on without keeping, until touched again.
	a.mu.Lock()
	if _, err := a.read(p, &buf); err != nil || a.fds != nil {
		t.Errorf("read of a released set: %v, kept %d", err, len(a.fds))
	}
	a.mu.Unlock()
	l.forget(b)
	if b.kept.Load() || b.fds != nil || len(l.order) != 1 {
		t.Errorf("after forget: b kept %v with %d files; %d in order", b.kept.Load(), len(b.fds), len(l.order))
	}
	// A removed file reads as ENOENT and is dropped.
	os.Remove(p)
	f := &statFiles{}
	l.touch(f)
	f.mu.Lock()
	_, err := f.read(p, &buf)
	f.mu.Unlock()
	if !os.IsNotExist(err) {
		t.Errorf("read of a missing file: %v", err)
	}
}

// TestStatFilesConcurrent reads, evicts and forgets sets from many
// goroutines (run it with -race): no read fails, and once every set is
// forgotten no file is left open.
func TestStatFilesConcurrent(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	for i := 0; i < 4; i++ {
		p := filepath.Join(dir, "f"+string(rune('a'+i)))
		os.WriteFile(p, []byte("12345\n"), 0o644)
		paths = append(paths, p)
	}
	fdsBefore := openFDs(t)
	l := &statLRU{max: 3}
	sets := make([]*statFiles, 8)
	for i := range sets {
		sets[i] = &statFiles{}
	}
	done := make(chan error)
	for g := 0; g < 8; g++ {
		go func(g int) {
			buf := make([]byte, 64)
			for i := 0; i < 300; i++ {
				f := sets[(g+i)%len(sets)]
				if i%50 == 49 {
					l.forget(f)
					continue
				}
				l.touch(f)
				f.mu.Lock()
				for _, p := range paths {
					if b, err := f.read(p, &buf); err != nil || string(b) != "12345\n" {
						f.mu.Unlock()
						done <- fmt.Errorf("read %s: %q, %v", p, b, err)
						return
					}
				}
				f.mu.Unlock()
			}
			done <- nil
		}(g)
	}
	for g := 0; g < 8; g++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	if n := len(l.order); n > l.max {
		t.Errorf("%d sets keep files, max %d", n, l.max)
	}
	for _, f := range sets {
		l.forget(f)
	}
	if got := openFDs(t); got != fdsBefore {
		t.Errorf("%d fds open after every set was forgotten, %d before", got, fdsBefore)
	}
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
