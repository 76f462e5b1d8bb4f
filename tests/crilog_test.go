package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// criRecords reads a CRI-format log and returns its records as
// "STREAM TAG LINE", checking each timestamp.
func criRecords(tb testing.TB, path string) []string {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		tb.Fatal(err)
	}
	var recs []string
	for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if l == "" {
			continue
		}
		ts, rest, _ := strings.Cut(l, " ")
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
			tb.Errorf("%s: record %q: bad timestamp: %v", path, l, err)
		}
		recs = append(recs, rest)
	}
	return recs
}

// waitRecords waits until the log at path holds exactly want. The two
// streams are copied apart, so only the order within each stream is
// defined: the records are compared stream by stream.
func waitRecords(tb testing.TB, path string, want ...string) {
	tb.Helper()
	w := byStream(want)
	waitFor(tb, path+" to hold its records", func() (bool, string) {
		got := byStream(criRecords(tb, path))
		return got == w, fmt.Sprintf("records:\n%s\nwant:\n%s", got, w)
	})
}

// byStream lists the stdout records, then the stderr ones, each in order.
func byStream(recs []string) string {
	var out, errs []string
	for _, r := range recs {
		if strings.HasPrefix(r, "stderr ") {
			errs = append(errs, r)
		} else {
			out = append(out, r)
		}
	}
	return strings.Join(append(out, errs...), "\n")
}

// TestCRILogPath: create/run/exec --log-path writes the process's output a
// second time in the CRI log format (whole lines F, long ones split into
// 16 KiB P records, the unended last line at the end), written by the shim:
// it goes on while the daemon is down; reopen-log (also after a daemon
// restart) opens the path anew after a rotation. Bad paths are refused
// with nothing left behind.
func TestCRILogPath(t *testing.T) {
	d := startDaemon(t)
	logs := t.TempDir()
	b := newBundle(t, "sh", "-c", `while read x; do echo "out $x"; echo "err $x" >&2; done; printf tail`)
	id := newID("crilog")
	initLog := filepath.Join(logs, "init.log")
	d.run(id, b, "--stdin", "--log-path", initLog)

	if err := d.writeStdin(id, "init", []byte("a\n")); err != nil {
		t.Fatal(err)
	}
	waitRecords(t, initLog, "stdout F out a", "stderr F err a")

	// Rotation: moved away, the file still gets what comes before the
	// reopen; after it, a new file at the path.
	if err := os.Rename(initLog, initLog+".1"); err != nil {
		t.Fatal(err)
	}
	if err := d.writeStdin(id, "init", []byte("b\n")); err != nil {
		t.Fatal(err)
	}
	waitRecords(t, initLog+".1", "stdout F out a", "stderr F err a", "stdout F out b", "stderr F err b")

	// A long line and output while the daemon is down, by an exec.
	execLog := filepath.Join(logs, "exec.log")
	d.mustExec(id, "long --log-path "+execLog+` -- sh -c 'while [ ! -e /tmp/go ]; do sleep 0.05; done; head -c 20000 /dev/zero | tr "\0" x; echo; printf end'`)
	d.kill()
	if err := os.WriteFile(filepath.Join(b, "rootfs", "tmp", "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	x := strings.Repeat("x", 16<<10)
	waitRecords(t, execLog, "stdout P "+x, "stdout F "+strings.Repeat("x", 20000-16<<10), "stdout F end")
	d.restart()

	// reopen-log after the restart: the daemon knows the path again.
	d.mustCtl("reopen-log\n", id, "processes", "init")
	// The new file is there as soon as the order is taken.
	if _, err := os.Stat(initLog); err != nil {
		t.Errorf("after reopen-log: %v", err)
	}
	if err := d.writeStdin(id, "init", []byte("c\n")); err != nil {
		t.Fatal(err)
	}
	waitRecords(t, initLog, "stdout F out c", "stderr F err c")
	d.mustCtl("close-stdin\n", id, "processes", "init")
	d.waitContent("0", id, "processes", "init", "exit")
	waitRecords(t, initLog, "stdout F out c", "stderr F err c", "stdout F tail")
	if got := criRecords(t, initLog+".1"); len(got) != 4 {
		t.Errorf("rotated log after the reopen: %q, want its 4 records only", got)
	}

	// Refusals.
	d.ctlErr("reopen-log\n", syscall.EBUSY, []string{"exited"}, id, "processes", "init")
	id2 := newID("crilog")
	d.run(id2, demoBundle(t))
	d.ctlErr("reopen-log\n", syscall.EINVAL, []string{"no log path"}, id2, "processes", "init")
	d.ctlErr("exec e --log-path rel.log -- true\n", syscall.EINVAL, []string{"absolute"}, id2)
	d.ctlErr("exec e --log-path "+filepath.Join(logs, "no", "such", "x.log")+" -- true\n", syscall.ENOENT, []string{"directory"}, id2)
	d.ctlErr(`exec e --log-path "" -- true`+"\n", syscall.EINVAL, []string{"empty"}, id2)
	if _, err := os.Stat(d.path(id2, "processes", "e")); !os.IsNotExist(err) {
		t.Errorf("processes/e after refused execs: %v, want ENOENT", err)
	}
	id3 := newID("crilog")
	d.ctlErr("run "+id3+" "+b+" --log-path "+filepath.Join(logs, "no", "x.log")+"\n", syscall.ENOENT, []string{"directory"})
	d.ctlErr("run "+id3+" "+b+" --log-path x.log\n", syscall.EINVAL, []string{"absolute"})
	if _, err := os.Stat(d.path(id3)); !os.IsNotExist(err) {
		t.Errorf("%s after refused runs: %v, want ENOENT", id3, err)
	}
	// The JSON form of exec takes it too.
	jsonLog := filepath.Join(logs, "json.log")
	d.mustExec(id2, `j --log-path `+jsonLog+` {"args":["echo","json"]}`)
	waitRecords(t, jsonLog, "stdout F json")
}
