package runtime

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// inotifyEvents watches path and returns the masks its callback gets.
func inotifyEvents(t *testing.T, in *inotify, path string) (*inotifyWatch, <-chan uint32) {
	t.Helper()
	ch := make(chan uint32, 64)
	w, err := in.add(path, unix.IN_MODIFY, func(mask uint32) { ch <- mask })
	if err != nil {
		t.Fatal(err)
	}
	return w, ch
}

func wantMask(t *testing.T, ch <-chan uint32, want uint32) {
	t.Helper()
	select {
	case got := <-ch:
		if got&want == 0 {
			t.Fatalf("mask %#x, want %#x", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no event %#x", want)
	}
}

// appendTo writes one byte to path: one IN_MODIFY (os.WriteFile's
// truncation would be a second one).
func appendTo(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
}

func noEvent(t *testing.T, ch <-chan uint32) {
	t.Helper()
	select {
	case got := <-ch:
		t.Fatalf("unexpected event %#x", got)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestInotify(t *testing.T) {
	in, err := newInotify(logrus.New())
	if err != nil {
		t.Fatal(err)
	}
	defer in.close()
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, p := range []string{a, b} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	wa, cha := inotifyEvents(t, in, a)
	_, chb := inotifyEvents(t, in, b)
	if _, err := in.add(a, unix.IN_MODIFY, func(uint32) {}); err == nil {
		t.Error("a second watch of one file was accepted")
	}

	// Each watch gets its own file's changes.
	appendTo(t, a)
	wantMask(t, cha, unix.IN_MODIFY)
	noEvent(t, chb)

	// A removed watch hears nothing more; removing twice is harmless.
	in.remove(wa)
	in.remove(wa)
	appendTo(t, a)
	noEvent(t, cha)

	// A removed file ends its watch with IN_IGNORED.
	os.Remove(b)
	wantMask(t, chb, unix.IN_IGNORED)
	in.mu.Lock()
	n := len(in.watches)
	in.mu.Unlock()
	if n != 0 {
		t.Errorf("%d watches left, want 0", n)
	}
}

// TestInotifyRenew: a new instance (what a failed read leads to) watches
// the same files; their watchers hear that events may have been lost, and
// a file that is gone meanwhile is reported gone.
func TestInotifyRenew(t *testing.T) {
	in, err := newInotify(logrus.New())
	if err != nil {
		t.Fatal(err)
	}
	defer in.close()
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, p := range []string{a, b} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, cha := inotifyEvents(t, in, a)
	_, chb := inotifyEvents(t, in, b)
	// b's path names nothing any more (its watch, on the inode, stays).
	if err := os.Rename(b, b+".old"); err != nil {
		t.Fatal(err)
	}
	if err := in.renew(); err != nil {
		t.Fatal(err)
	}
	wantMask(t, cha, unix.IN_Q_OVERFLOW)
	wantMask(t, chb, unix.IN_IGNORED)
	appendTo(t, a)
	wantMask(t, cha, unix.IN_MODIFY)
}

// TestInotifyReadFailure: when reading the instance fails, the reader
// does not end: it makes a new one, and changes are seen again.
func TestInotifyReadFailure(t *testing.T) {
	in, err := newInotify(logrus.New())
	if err != nil {
		t.Fatal(err)
	}
	defer in.close()
	a := filepath.Join(t.TempDir(), "a")
	if err := os.WriteFile(a, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, ch := inotifyEvents(t, in, a)
	// Break the instance under the reader: its Read fails (os.ErrClosed).
	in.mu.Lock()
	in.f.Close()
	in.mu.Unlock()
	wantMask(t, ch, unix.IN_Q_OVERFLOW)
	appendTo(t, a)
	wantMask(t, ch, unix.IN_MODIFY)
}
