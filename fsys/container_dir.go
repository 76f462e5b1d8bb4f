package fsys

import (
	"encoding/json"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"

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

	mu    sync.Mutex
	procs map[Process]*processDir // stable nodes: one per process
	n     *notifier
}

func newContainerDir(f *FS, c Container) *containerDir {
	d := &containerDir{c: c, n: f.n, procs: map[Process]*processDir{}}
	d.ctl = containerTable.ctl(containerCtl{c, forgettingRuntime{f.rt, f}})
	rel := func(name string) string { return path.Join(c.ID(), name) }
	d.state = newWatchedFile(f.n, rel("state"), func() ([]byte, error) { return text(string(c.State())), nil })
	d.pids = newWatchedFile(f.n, rel("pids"), func() ([]byte, error) {
		pids, err := c.Pids()
		var sb strings.Builder
		for _, p := range pids {
			sb.WriteString(strconv.Itoa(p) + "\n")
		}
		return []byte(sb.String()), err
	})
	d.oom = newWatchedFile(f.n, rel("oom"), func() ([]byte, error) {
		return text(strconv.FormatUint(c.OOMCount(), 10)), nil
	})
	d.entries = map[string]fs.Node{
		"ctl":   d.ctl,
		"state": d.state,
		"status": newROFile(func() ([]byte, error) {
			b, err := json.Marshal(c.Status())
			return append(b, '\n'), err
		}),
		"pid":         newROFile(func() ([]byte, error) { return text(pidText(c.Pid())), nil }),
		"pids":        d.pids,
		"oom":         d.oom,
		"events":      &eventsFile{rt: f.rt, id: c.ID(), c: c, n: f.n},
		"stats":       d.statsFile(),
		"labels":      newConstFile(func() []byte { return labelsText(c.Labels()) }),
		"bundle":      newConstFile(func() []byte { return text(c.Bundle()) }),
		"runtime":     newConstFile(func() []byte { return text(c.RuntimeName()) }),
		"config.json": newConstFile(c.Spec),
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

// newProcessDir makes the directory of process p, at rel under the mount.
func newProcessDir(n *notifier, rel string, p Process) *processDir {
	d := &processDir{
		ctl:   processTable.ctl(p),
		state: newWatchedFile(n, path.Join(rel, "state"), func() ([]byte, error) { return text(string(p.State())), nil }),
		exit:  newWatchedFile(n, path.Join(rel, "exit"), func() ([]byte, error) { return text(p.ExitText()), nil }),
		wait:  &waitFile{p: p},
	}
	d.exit.settled = d.wait.done
	d.entries = map[string]fs.Node{
		"ctl":   d.ctl,
		"pid":   newROFile(func() ([]byte, error) { return text(pidText(p.Pid())), nil }),
		"state": d.state,
		"exit":  d.exit,
		"wait":  d.wait,
		"spec":  newROFile(func() ([]byte, error) { return append(append([]byte(nil), p.Spec()...), '\n'), nil }),
		"stdin": &stdinFile{p: p, lastErr: d.ctl.lastErr, n: n},
	}
	for _, s := range []string{runtime.Stdout, runtime.Stderr} {
		d.entries[s] = &logFile{p: p, stream: s, rel: path.Join(rel, s), n: n}
		d.entries[s+".follow"] = &followFile{p: p, stream: s, lastErr: d.ctl.lastErr, n: n}
		d.entries[s+".lost"] = newLostFile(p, s)
	}
	return d
}

// exited tells the process's watchers that it has exited.
func (d *processDir) exited(n *notifier) {
	d.state.changed()
	d.exit.changed()
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
