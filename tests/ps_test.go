package tests

import (
	"errors"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPS checks /mnt/ctr/ps, the docker ps-like overview, as a shell user
// reads it: `cat`, `column -t`, awk by column, `watch`, a fresh snapshot
// per open; and that `grep -r running /mnt/ctr/*/state` answers at once.
func TestPS(t *testing.T) {
	d := startDaemon(t)
	b := demoBundle(t)
	// Ids chosen so that sorting by id differs from the order of creation.
	run, stop, made := newID("z-run"), newID("a-stop"), newID("m-made")
	d.run(run, b)
	d.run(stop, b)
	d.mustCtl("create " + made + " " + b + "\n")
	t.Cleanup(func() {
		for _, id := range []string{run, stop, made} {
			d.ctl("delete " + id + " --force\n")
		}
	})
	d.mustCtl("kill KILL", stop)
	d.waitState(stop, "stopped")

	env := []string{"RUN=" + run, "STOP=" + stop, "MADE=" + made}
	out := d.mustSh(`cat $MNT/ps`, env...)
	ls := lines(out)
	if len(ls) != 4 {
		t.Fatalf("cat ps: %d lines, want a header and 3 containers:\n%s", len(ls), out)
	}
	if h := strings.Fields(ls[0]); !slices.Equal(h, []string{"ID", "STATE", "PID", "CREATED", "EXIT", "BUNDLE"}) {
		t.Errorf("header = %q", ls[0])
	}
	// Fixed columns: every cell of a column starts where its header does.
	for col, name := range []string{"STATE", "PID", "CREATED", "EXIT", "BUNDLE"} {
		at := strings.Index(ls[0], name)
		for _, l := range ls[1:] {
			if at <= 0 || len(l) <= at || l[at-1] != ' ' || l[at] == ' ' {
				t.Errorf("column %d (%s) is not at offset %d in %q", col+1, name, at, l)
			}
		}
	}
	byID := map[string][]string{}
	var order []string
	for _, l := range ls[1:] {
		f := strings.Fields(l)
		if len(f) != 6 {
			t.Fatalf("line %q has %d fields, want 6", l, len(f))
		}
		byID[f[0]] = f
		order = append(order, f[0])
	}
	if want := []string{stop, made, run}; !slices.Equal(order, want) {
		t.Errorf("ps lists %v, want sorted by id %v", order, want)
	}
	created := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)
	for id, f := range byID {
		if !created.MatchString(f[3]) {
			t.Errorf("%s: CREATED %q, want RFC 3339 UTC", id, f[3])
		} else if c, err := time.Parse(time.RFC3339, f[3]); err != nil || time.Since(c) > 10*time.Minute || time.Until(c) > time.Second {
			t.Errorf("%s: CREATED %q is not now (%v)", id, f[3], err)
		}
		if f[5] != b {
			t.Errorf("%s: BUNDLE %q, want %q", id, f[5], b)
		}
	}
	want := map[string][3]string{ // STATE, PID, EXIT
		run:  {"running", strconv.Itoa(d.initPid(run)), "-"},
		made: {"created", d.readTrim(made, "pid"), "-"},
		stop: {"stopped", "-", "137"},
	}
	for id, w := range want {
		if f := byID[id]; f == nil || f[1] != w[0] || f[2] != w[1] || f[4] != w[2] {
			t.Errorf("%s: %q, want STATE PID EXIT %q", id, f, w)
		}
	}

	// The tools people reach for.
	if got := d.mustSh(`column -t $MNT/ps | awk 'NR > 1 {print $1, $2}'`, env...); got != stop+" stopped\n"+made+" created\n"+run+" running\n" {
		t.Errorf("column -t | awk = %q", got)
	}
	if got := d.mustSh(`awk '$2 == "running" {print $1}' $MNT/ps`, env...); got != run+"\n" {
		t.Errorf("awk of running = %q, want %s", got, run)
	}

	// A fresh snapshot per open: a pause shows in the next cat.
	d.mustCtl("pause", run)
	if got := d.mustSh(`grep "^$RUN " $MNT/ps | awk '{print $2}'`, env...); got != "paused\n" {
		t.Errorf("state in ps after pause = %q, want paused", got)
	}
	d.mustCtl("resume", run)

	// stat gives a page-rounded size, never less than the content.
	if st, err := os.Stat(d.path("ps")); err != nil {
		t.Error(err)
	} else if st.Size() < int64(len(out)) || st.Size()%4096 != 0 || st.Mode().Perm() != 0o400 {
		t.Errorf("stat ps: size %d mode %v, want a 4 KiB multiple >= %d, 0400 (an unshared mount)", st.Size(), st.Mode(), len(out))
	}
	// Like every read-only file: no writing, no removing.
	if err := os.WriteFile(d.path("ps"), []byte("x"), 0); !errors.Is(err, syscall.EACCES) {
		t.Errorf("write ps: %v, want EACCES", err)
	}
	if err := os.Remove(d.path("ps")); !errors.Is(err, syscall.EACCES) {
		t.Errorf("rm ps: %v, want EACCES", err)
	}

	// grep -r over every state answers at once (no state file blocks).
	r := d.sh(`timeout 10 grep -r running $MNT/*/state`, env...)
	if r.code != 0 || strings.TrimSpace(r.stdout) != d.path(run, "state")+":running" {
		t.Errorf("grep -r running $MNT/*/state: %s, want only %s", r, run)
	}
	if r := d.sh(`timeout 10 grep -l . $MNT/*/state $MNT/*/pid $MNT/*/exit $MNT/*/status $MNT/ps | wc -l`); r.code != 0 {
		t.Errorf("grep over the container files: %s", r)
	}

	// watch cat ps, on a terminal (script(1) gives it one).
	for _, tool := range []string{"watch", "script"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CTRFS_REQUIRE_INTEGRATION") == "1" {
				t.Fatalf("%s not found (CTRFS_REQUIRE_INTEGRATION=1)", tool)
			}
			t.Skipf("%s not found: watch cat ps untested", tool)
		}
	}
	r = d.sh(`TERM=xterm COLUMNS=200 LINES=20 timeout -s INT 3 script -qec "watch -n 0.2 cat $MNT/ps" /dev/null`, env...)
	if !strings.Contains(r.stdout, run) || !strings.Contains(r.stdout, "BUNDLE") {
		t.Errorf("watch cat ps showed no table: %s", r)
	}
}
