package fsys

import (
	"encoding/json"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"bazil.org/fuse/fs"

	"github.com/ctrfs/ctrfs/runtime"
)

// containerDir is /ID: ctl, state, status, pid, pids, stats, oom, events,
// labels, bundle, runtime, config.json, processes/ and checkpoints/.
type containerDir struct {
	staticDir
	c                Container
	ctl              *ctlFile
	state, pids, oom *watchedFile
	status, pid      *roFile // changed by events, as the watched files
	events           *eventsFile

	mu    sync.Mutex
	procs map[Process]*processDir // stable nodes: one per process
	n     *notifier
}

func newContainerDir(f *FS, c Container) *containerDir {
	d := &containerDir{c: c, n: f.n, procs: map[Process]*processDir{}}
	d.ctl = containerTable.ctl(containerCtl{c, forgettingRuntime{f.rt, f}})
	rel := func(name string) string { return path.Join(c.ID(), name) }
	created := func() time.Time { return c.Times().Created }
	d.ctl.mtime, d.stamp.mtime = created, created
	d.state = newWatchedFile(f.n, rel("state"), func() time.Time { return c.Times().State }, func() ([]byte, error) { return text(string(c.State())), nil })
	d.pids = newWatchedFile(f.n, rel("pids"), func() time.Time { return c.Times().Pids }, func() ([]byte, error) {
		pids, err := c.Pids()
		var sb strings.Builder
		for _, p := range pids {
			sb.WriteString(strconv.Itoa(p) + "\n")
		}
		return []byte(sb.String()), err
	})
	d.pids.sized = false // read from the kernel at each open
	d.oom = newWatchedFile(f.n, rel("oom"), func() time.Time { return c.Times().OOM }, func() ([]byte, error) {
		return text(strconv.FormatUint(c.OOMCount(), 10)), nil
	})
	d.status = newROFile(func() ([]byte, error) {
		b, err := json.Marshal(c.Status())
		return append(b, '\n'), err
	})
	// Made per open: its lost counts are read from the logs then.
	d.status.pageSize, d.status.stamp.mtime = true, func() time.Time { return c.Times().Status }
	d.pid = newKnownFile(func() time.Time { return c.Times().Pid }, func() ([]byte, error) { return text(pidText(c.Pid())), nil })
	d.events = &eventsFile{rt: f.rt, id: c.ID(), c: c, n: f.n}
	d.events.stamp.mtime = func() time.Time { return c.Times().Events }
	d.entries = map[string]fs.Node{
		"ctl":         d.ctl,
		"state":       d.state,
		"status":      d.status,
		"pid":         d.pid,
		"pids":        d.pids,
		"oom":         d.oom,
		"events":      d.events,
		"stats":       d.statsFile(),
		"labels":      newConstFile(created, func() []byte { return labelsText(c.Labels()) }),
		"bundle":      newConstFile(created, func() []byte { return text(c.Bundle()) }),
		"runtime":     newConstFile(created, func() []byte { return text(c.RuntimeName()) }),
		"config.json": newConstFile(created, c.Spec),
		"processes":   &processesDir{d: d},
		"checkpoints": &checkpointsDir{c: c, lastErr: d.ctl.lastErr},
	}
	return d
}

// process returns the directory node made for the process called name, if
// one was made (a node nobody looked up has no watchers to tell).
func (d *containerDir) process(name string) *processDir {
	p := d.c.Process(name)
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.procs[p]
}

// dirFor returns the one directory node of process p. Stable nodes keep
// inode numbers stable, which inotify watchers depend on; a name reused
// after a removal is a new process and gets a new node.
func (d *containerDir) dirFor(p Process) *processDir {
	d.mu.Lock()
	defer d.mu.Unlock()
	if pd, ok := d.procs[p]; ok {
		return pd
	}
	for old := range d.procs { // forget the nodes of removed processes
		if d.c.Process(old.Name()) != old {
			delete(d.procs, old)
		}
	}
	pd := newProcessDir(d.n, path.Join(d.c.ID(), "processes", p.Name()), p)
	d.procs[p] = pd
	return pd
}

// statsFile is ID/stats: a fresh JSON snapshot at each open; empty once
// the container is stopped.
func (d *containerDir) statsFile() *roFile {
	f := newROFile(func() ([]byte, error) {
		st, err := d.c.Stats()
		if st == nil || err != nil {
			return nil, err
		}
		b, err := json.Marshal(st)
		return append(b, '\n'), err
	})
	f.pageSize = true
	// A fresh snapshot at each open: its content is of now, and its
	// attributes are never cached.
	f.stamp.mtime, f.stamp.live = time.Now, true
	return f
}

// processDir is processes/NAME: ctl, pid, state, exit, wait, spec, stdin,
// and stdout, stderr, each also .follow and .lost (output.go).
type processDir struct {
	staticDir
	ctl         *ctlFile
	state, exit *watchedFile
	wait        *waitFile
}

// procTime is when process p's files last changed: its exit, or its start.
func procTime(p Process) time.Time {
	t := p.Times()
	if t.Exited.IsZero() {
		return t.Started
	}
	return t.Exited
}

// newProcessDir makes the directory of process p, at rel under the mount.
func newProcessDir(n *notifier, rel string, p Process) *processDir {
	started := func() time.Time { return p.Times().Started }
	changed := func() time.Time { return procTime(p) }
	d := &processDir{
		ctl:   processTable.ctl(p),
		state: newWatchedFile(n, path.Join(rel, "state"), changed, func() ([]byte, error) { return text(string(p.State())), nil }),
		exit:  newWatchedFile(n, path.Join(rel, "exit"), changed, func() ([]byte, error) { return text(p.ExitText()), nil }),
		wait:  &waitFile{p: p},
	}
	d.ctl.mtime, d.stamp.mtime, d.wait.stamp.mtime = started, started, changed
	d.exit.settled = d.wait.done
	d.entries = map[string]fs.Node{
		"ctl":   d.ctl,
		"pid":   newKnownFile(started, func() ([]byte, error) { return text(pidText(p.Pid())), nil }),
		"state": d.state,
		"exit":  d.exit,
		"wait":  d.wait,
		"spec":  newKnownFile(started, func() ([]byte, error) { return append(append([]byte(nil), p.Spec()...), '\n'), nil }),
		"stdin": &stdinFile{p: p, lastErr: d.ctl.lastErr, n: n},
	}
	for _, s := range []string{runtime.Stdout, runtime.Stderr} {
		d.entries[s] = &logFile{p: p, stream: s, rel: path.Join(rel, s), n: n}
		follow := &followFile{p: p, stream: s, lastErr: d.ctl.lastErr, n: n}
		lost := newLostFile(p, s)
		// Their content changes as the log grows: its mtime, never cached.
		follow.stamp.mtime, follow.stamp.live = logTime(p, s), true
		lost.stamp.mtime, lost.stamp.live, lost.pageSize = logTime(p, s), true, true
		d.entries[s+".follow"] = follow
		d.entries[s+".lost"] = lost
	}
	return d
}

// exited tells the process's watchers that it has exited.
func (d *processDir) exited(n *notifier) {
	d.state.changed()
	d.exit.changed()
	d.wait.stamp.changed(n, d.wait)
	d.wait.exited(n)
}

func pidText(pid int) string {
	if pid <= 0 {
		return ""
	}
	return strconv.Itoa(pid)
}

func labelsText(labels map[string]string) []byte {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	for _, k := range keys {
		sb.WriteString(k + "=" + labels[k] + "\n")
	}
	return []byte(sb.String())
}
