package fsys

import (
	"github.com/ctrfs/ctrfs/runtime"
)

// changesBuffer is how far the filesystem's own subscription may fall
// behind before it overflows (it then tells every watcher).
const changesBuffer = 1 << 16

// followChanges turns the runtime's events into changes of the files that
// show them: their pollers are woken and their inotify watchers poked.
func (f *FS) followChanges() {
	ready := make(chan struct{}, 1)
	sub := f.rt.Subscribe("", changesBuffer, func() { kick(ready) })
	for range ready {
		for _, e := range sub.Take() {
			f.applyChange(e)
		}
	}
}

func (f *FS) applyChange(e runtime.Event) {
	for _, d := range f.dirsOf(e.ID) {
		switch e.Type {
		case runtime.EventCreate, runtime.EventPause, runtime.EventResume:
			d.state.changed()
		case runtime.EventStart:
			d.state.changed()
			d.pids.changed()
		case runtime.EventExec:
			d.pids.changed()
		case runtime.EventExit:
			if p := d.process(e.Process); p != nil {
				p.exited(f.n)
			}
			if e.Process == "init" {
				d.state.changed()
			}
			d.pids.changed()
		case runtime.EventOOM:
			d.oom.changed()
		case runtime.EventOverflow:
			d.changedAll(f.n)
		}
	}
}

// dirsOf returns the directory nodes made for containers called id (more
// than one when a deleted container's node is still known), or for every
// container when id is "" (an overflow of the filesystem's subscription).
func (f *FS) dirsOf(id string) []*containerDir {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*containerDir
	for c, d := range f.dirs {
		if id == "" || c.ID() == id {
			out = append(out, d)
		}
	}
	return out
}

// changedAll tells every watcher of the container's files to look again.
func (d *containerDir) changedAll(n *notifier) {
	d.state.changed()
	d.pids.changed()
	d.oom.changed()
	d.mu.Lock()
	procs := make([]*processDir, 0, len(d.procs))
	for _, p := range d.procs {
		procs = append(procs, p)
	}
	d.mu.Unlock()
	for _, p := range procs {
		p.exited(n)
	}
}
