package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/ctrfs/ctrfs/shim/proto"
)

// Load rebuilds every container from the state directory, as a daemon must
// after a crash or an upgrade: it reattaches to live shims through their
// exit fifos and records the exits that happened while it was down. A
// create that never finished (no state.json) is undone.
func (r *Runtime) Load() error {
	entries, err := os.ReadDir(r.cfg.StateDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		id := e.Name()
		if !e.IsDir() || id == runtimeRootDir || CheckName("container id", id) != nil {
			continue
		}
		if err := r.loadContainer(id); err != nil {
			r.log.WithError(err).WithField("id", id).Warn("cannot load container; undoing it")
			r.undoHalfMade(id)
		}
	}
	return nil
}

func (r *Runtime) loadContainer(id string) error {
	dir := filepath.Join(r.cfg.StateDir, id)
	var rec containerRecord
	if err := readJSON(filepath.Join(dir, recordFile), &rec); err != nil {
		return err
	}
	if rec.ID != id {
		return errors.New("state.json names another container")
	}
	raw, err := os.ReadFile(filepath.Join(dir, specCopyFile))
	if err != nil {
		return err
	}
	spec, err := processSpecOf(raw)
	if err != nil {
		return err
	}
	c := r.newContainer(rec, raw)
	c.init = newProcess(initProcess, filepath.Join(dir, initProcess), spec)
	if err := c.init.readPidFile(); err != nil {
		return err
	}
	exit, err := c.init.readExitFile()
	if err != nil {
		return err
	}
	c.state = Running
	if exit != nil {
		c.state = Stopped
		c.init.setExit(exit)
		at := exit.ExitedAt
		c.exited = &at
	} else {
		if _, err := os.Stat(filepath.Join(r.runtimeRoot, id, "exec.fifo")); err == nil {
			c.state = Created // runc's create waits on this fifo until start
		} else if c.cgroups().frozen() {
			c.state = Paused
		}
		// A shim that died while we were down makes this fire at once.
		if err := r.mon.watchFifo(filepath.Join(c.init.dir, proto.ExitFifo), func() { c.shimGone(c.init) }); err != nil {
			return err
		}
	}
	r.mu.Lock()
	r.containers[id] = c
	r.mu.Unlock()
	c.log.WithFields(map[string]any{"state": c.state, "pid": c.init.Pid()}).Info("loaded")
	return nil
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

// undoHalfMade removes what a create interrupted by a daemon crash left: the
// runtime's container (which ends its shim) and the directory.
func (r *Runtime) undoHalfMade(id string) {
	dir := filepath.Join(r.cfg.StateDir, id)
	ctx, cancel := context.WithTimeout(context.Background(), orderTimeout)
	defer cancel()
	rtPath := r.cfg.Runtime
	var rec containerRecord
	if readJSON(filepath.Join(dir, recordFile), &rec) == nil && rec.RuntimePath != "" {
		rtPath = rec.RuntimePath
	}
	newRuntimeCLI(rtPath, r.runtimeRoot, nil).delete(ctx, id, true)
	if b, err := os.ReadFile(filepath.Join(dir, initProcess, proto.ShimPidFile)); err == nil {
		if pid, start, err := parsePidFile(b); err == nil {
			for deadline := time.Now().Add(5 * time.Second); alive(pid, start) && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	os.RemoveAll(dir)
}
