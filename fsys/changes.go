package fsys

import (
	"github.com/ctrfs/ctrfs/runtime"
)

// followChanges turns the runtime's events into changes of the files that
// show them: their pollers are woken and their inotify watchers poked.
// applyChange runs in the publisher's goroutine, under the bus lock, in
// event order; it only bumps counters and queues work for the notifier.
func (f *FS) followChanges() {
	f.rt.Observe(f.applyChange)
}

func (f *FS) applyChange(e runtime.Event) {
	f.changedTimes(e)
	if e.Type == runtime.EventDelete && e.Process == "" {
		f.n.forgetEntry(f.root, e.ID) // whoever deleted it: see containerEntryValid
		return
	}
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
		}
	}
}

// dirsOf returns the directory node of the container called id, if one
// was made; the node of a deleted container of the same id is left alone.
func (f *FS) dirsOf(id string) []*containerDir {
	cur, ok := f.rt.Get(id)
	if !ok {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if d, ok := f.dirs[cur]; ok {
		return []*containerDir{d}
	}
	return nil
}

// changedTimes drops the kernel's cached attributes of the files whose
// times e moves (attrtimes.go); the watched files drop theirs as they
// change. Every event moves the events files' and status's; ps's moves
// with any container's state.
func (f *FS) changedTimes(e runtime.Event) {
	f.events.stamp.changed(f.n, f.events)
	switch e.Type {
	case runtime.EventCreate, runtime.EventStart, runtime.EventPause, runtime.EventResume, runtime.EventExit, runtime.EventDelete:
		f.ps.stamp.changed(f.n, f.ps)
	}
	for _, d := range f.dirsOf(e.ID) {
		d.events.stamp.changed(f.n, d.events)
		d.status.stamp.changed(f.n, d.status)
		if e.Type == runtime.EventExit && e.Process == "init" {
			d.pid.stamp.changed(f.n, d.pid)
		}
	}
}
