package fsys

import (
	"context"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The kernel caches attributes: a pause must still show in the next stat
// of state (its cached attributes dropped when the change is published),
// its size is its content's, and a file that did not change keeps its time.
func TestFSTimesMoveWithChanges(t *testing.T) {
	rt := newFakeRuntime()
	c := rt.add("web")
	mnt := mountFake(t, rt)
	stat := func(name string) unix.Stat_t {
		t.Helper()
		var st unix.Stat_t
		if err := unix.Stat(mnt+"/web/"+name, &st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	mtime := func(st unix.Stat_t) time.Time { return time.Unix(st.Mtim.Unix()) }
	before, labels, dir := stat("state"), stat("labels"), stat(".")
	if again := stat("state"); again.Mtim != before.Mtim || again.Ctim != before.Ctim {
		t.Errorf("state's times moved without a change: %v then %v", mtime(before), mtime(again))
	}
	if !mtime(before).Equal(fakeEpoch) || before.Size != int64(len("running\n")) {
		t.Errorf("state: mtime %v size %d, want %v and %d", mtime(before), before.Size, fakeEpoch, len("running\n"))
	}
	if err := c.Pause(context.Background()); err != nil {
		t.Fatal(err)
	}
	after := stat("state")
	if !mtime(after).After(mtime(before)) || after.Ctim != after.Mtim || after.Size != int64(len("paused\n")) {
		t.Errorf("state after pause: mtime %v (before %v), ctime %v, size %d", mtime(after), mtime(before), time.Unix(after.Ctim.Unix()), after.Size)
	}
	if l := stat("labels"); l.Mtim != labels.Mtim || !mtime(l).Equal(fakeEpoch) {
		t.Errorf("labels' mtime moved: %v", mtime(l))
	}
	if d := stat("."); d.Mtim != dir.Mtim || !mtime(d).Equal(fakeEpoch) {
		t.Errorf("the container directory's mtime moved: %v, want its create %v", mtime(d), fakeEpoch)
	}
	if ctl := stat("ctl"); ctl.Size != ctlSize {
		t.Errorf("ctl size %d, want %d", ctl.Size, ctlSize)
	}
}
