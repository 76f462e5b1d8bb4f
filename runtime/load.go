package runtime

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/ctrfs/ctrfs/shim/proto"
)

// Load rebuilds every container from the state directory, as a daemon must
// after a crash or an upgrade: it reattaches to live shims through their
// exit fifos and records the exits that happened while it was down. A
// create that never finished (no state.json) is undone; a container whose
// files are damaged is loaded as stopped, with the reason, never destroyed.
func (r *Runtime) Load() error {
	entries, err := os.ReadDir(r.cfg.StateDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		id := e.Name()
		if strings.HasPrefix(id, ".") && strings.Contains(id, ".deleting-") {
			// A removal cut short: finish it, or say what is left.
			if err := os.RemoveAll(filepath.Join(r.cfg.StateDir, id)); err != nil {
				r.log.WithError(err).WithField("dir", id).Warn("cannot remove what a delete left")
			}
			continue
		}
		if !e.IsDir() || reservedIDs[id] || CheckName("container id", id) != nil {
			continue
		}
		dir := filepath.Join(r.cfg.StateDir, id)
		var rec containerRecord
		err := readJSON(filepath.Join(dir, recordFile), &rec)
		switch {
		case errors.Is(err, os.ErrNotExist):
			r.log.WithField("id", id).Warn("create cut short by a crash; undoing it")
			r.undoCreate(id, r.halfMadeRuntime(dir))
		case err != nil || rec.ID != id:
			r.log.WithError(err).WithField("id", id).Warn("unreadable state.json; leaving the directory alone")
		default:
			r.loadContainer(rec)
		}
	}
	r.releaseVanishedHolds()
	return nil
}

// halfMadeRuntime is the runtime an unfinished create used.
func (r *Runtime) halfMadeRuntime(dir string) string {
	var cfg proto.Config
	if readJSON(filepath.Join(dir, initProcess, proto.ConfigFile), &cfg) == nil && cfg.Runtime != "" {
		return cfg.Runtime
	}
	return r.cfg.Runtime
}

func (r *Runtime) loadContainer(rec containerRecord) {
	dir := filepath.Join(r.cfg.StateDir, rec.ID)
	log := r.log.WithField("id", rec.ID)
	r.loadImageRootfs(rec)
	r.undoCheckpoint(dir, rec)
	// Without its spec the container is still loaded, and supervised: only
	// what is read from the spec (the spec file, exec's defaults) is missing.
	raw, err := os.ReadFile(filepath.Join(dir, specCopyFile))
	if err != nil {
		log.WithError(err).Warn("unreadable copy of config.json")
	}
	spec, err := processSpecOf(raw)
	if err != nil && raw != nil {
		log.WithError(err).Warn("damaged copy of config.json")
	}
	if rec.Resources == nil {
		rec.Resources = resourcesOf(raw) // a state.json from before updates existed
	}
	c := r.newContainer(rec, raw)
	var cfg proto.Config // init's stdin and terminal; a damaged file gives neither
	if err := readJSON(filepath.Join(dir, initProcess, proto.ConfigFile), &cfg); err != nil {
		log.WithError(err).Warn("unreadable shim config of init: loaded without stdin or terminal")
	}
	c.init = newProcess(c, initProcess, filepath.Join(dir, initProcess), spec, cfg)
	c.addProcess(c.init)
	exit, err := c.init.readExitFile()
	if err == nil && exit == nil {
		err = c.init.readPidFile()
	}
	if err != nil {
		exit = damaged(err)
	}
	// The state is settled before the exit fifo is watched: from then on
	// the monitor may record an exit at any moment.
	found := Running
	switch {
	case exit != nil:
		found = Stopped
		c.init.setExit(exit)
		c.init.markDone()
		c.init.loadStartTime()
		at := exit.ExitedAt
		c.exited = &at
	case fileExists(filepath.Join(r.runtimeRoot, rec.ID, "exec.fifo")):
		found = Created // runc's create waits on this fifo until start
	case c.cgroups().frozen():
		found = Paused
	}
	c.settle(found)
	c.init.noteClosedStdin()
	var execs []*Process
	if entries, err := os.ReadDir(dir); err == nil {
		for _, e := range entries {
			if e.IsDir() && e.Name() != initProcess && !reservedProcessNames[e.Name()] && CheckName("process name", e.Name()) == nil {
				if p := r.loadExec(c, e.Name()); p != nil {
					execs = append(execs, p)
				}
			}
		}
	}
	r.mu.Lock()
	r.containers[rec.ID] = c
	r.mu.Unlock()
	for _, p := range append([]*Process{c.init}, execs...) {
		if p.State() == ProcExited {
			continue
		}
		// A shim that died while we were down makes this fire at once.
		if err := c.watchShim(p); err != nil {
			c.recordExit(p, damaged(err))
			p.markDone()
		}
	}
	if exit == nil {
		c.watchOOM(r)
	}
	c.log.WithFields(map[string]any{"state": c.State(), "pid": c.init.Pid(), "execs": len(execs)}).Info("loaded")
}

// loadExec rebuilds an exec process of c from its directory, and returns
// it settled (its exit recorded if it has one), not yet watched. An exec
// whose start never finished (no pid file, no exit status: the daemon died
// while runc exec ran) is undone. A directory that is no exec's is left
// alone.
func (r *Runtime) loadExec(c *Container, name string) *Process {
	dir := filepath.Join(c.dir, name)
	log := c.log.WithField("process", name)
	var cfg proto.Config
	if err := readJSON(filepath.Join(dir, proto.ConfigFile), &cfg); err != nil || cfg.Action != proto.ActionExec {
		log.WithError(err).Warn("not an exec's directory; leaving it alone")
		return nil
	}
	p := newProcess(c, name, dir, cfg.Spec, cfg)
	exit, err := p.readExitFile()
	if err == nil && exit == nil {
		err = p.readPidFile()
		if errors.Is(err, os.ErrNotExist) {
			log.Warn("exec cut short by a crash; undoing it")
			c.undoExec(dir)
			return nil
		}
	}
	if err != nil {
		exit = damaged(err)
	}
	if exit != nil {
		// Recorded before this daemon's time, as init's: no event.
		p.setExit(exit)
		p.markDone()
		p.loadStartTime()
	}
	p.noteClosedStdin()
	c.addProcess(p)
	return p
}

// damaged is the exit recorded for a container whose files cannot be used.
func damaged(err error) *exitRecord {
	return &exitRecord{ExitStatus: exitStatusNow(0, 0), Unknown: true, Reason: "damaged state: " + oneLine(err.Error())}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// processSpecOf returns the process spec (JSON) of a config.json.
func processSpecOf(raw []byte) ([]byte, error) {
	var spec struct {
		Process json.RawMessage `json:"process"`
	}
	if err := json.Unmarshal(raw, &spec); err != nil {
		return nil, err
	}
	return spec.Process, nil
}
