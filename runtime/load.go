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
			os.RemoveAll(filepath.Join(r.cfg.StateDir, id)) // a removal cut short
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
	raw, _ := os.ReadFile(filepath.Join(dir, specCopyFile))
	spec, _ := processSpecOf(raw)
	if rec.Resources == nil {
		rec.Resources = resourcesOf(raw) // a state.json from before updates existed
	}
	c := r.newContainer(rec, raw)
	c.init = newProcess(initProcess, filepath.Join(dir, initProcess), spec)
	exit, err := c.init.readExitFile()
	if err == nil && exit == nil {
		err = c.init.readPidFile()
	}
	if err != nil {
		exit = damaged(err)
	}
	// The state is settled before the exit fifo is watched: from then on
	// the monitor may record an exit at any moment.
	switch {
	case exit != nil:
		c.state = Stopped
		c.init.setExit(exit)
		c.init.markDone()
		at := exit.ExitedAt
		c.exited = &at
	case fileExists(filepath.Join(r.runtimeRoot, rec.ID, "exec.fifo")):
		c.state = Created // runc's create waits on this fifo until start
	case c.cgroups().frozen():
		c.state = Paused
	default:
		c.state = Running
	}
	r.mu.Lock()
	r.containers[rec.ID] = c
	r.mu.Unlock()
	if exit == nil {
		// A shim that died while we were down makes this fire at once.
		if err := r.mon.watchFifo(filepath.Join(c.init.dir, proto.ExitFifo), func() { c.shimGone(c.init) }); err != nil {
			c.recordExit(c.init, damaged(err))
		}
		c.watchOOM(r)
	}
	c.log.WithFields(map[string]any{"state": c.State(), "pid": c.init.Pid()}).Info("loaded")
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
