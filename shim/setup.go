package shim

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ctrfs/ctrfs/internal/atomicfile"
	"github.com/ctrfs/ctrfs/shim/proto"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// setUp enters the process directory dir, holds the exit fifo, opens the
// shim's log, publishes the shim's pid and reads what the daemon asks.
func (s *shim) setUp(p *prepared, dir string) error {
	abs, err := filepath.Abs(dir)
	if err == nil {
		err = os.Chdir(abs)
	}
	if err != nil {
		return fmt.Errorf("shim: %v", err)
	}
	s.dir = abs
	// Hold the exit fifo first: from here on any death of the shim, even a
	// crash, shows as POLLHUP on the daemon's side. A raw fd has no
	// finalizer, so it stays open until the process ends or closes it.
	if s.exitFifo, err = unix.Open(proto.ExitFifo, unix.O_RDWR|unix.O_CLOEXEC, 0); err != nil {
		return fmt.Errorf("shim: open exit fifo: %v", err)
	}
	logf, err := os.OpenFile(proto.ShimLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("shim: open %s: %v", proto.ShimLog, err)
	}
	logger := logrus.New()
	logger.SetOutput(logf)
	logger.SetFormatter(&logrus.JSONFormatter{TimestampFormat: time.RFC3339Nano})
	s.log = logrus.NewEntry(logger)

	err = p.startErr
	if err == nil {
		err = atomicfile.WriteFile(proto.ShimPidFile, proto.MarshalPidFile(os.Getpid(), p.start), 0o644)
	}
	if err != nil {
		return fmt.Errorf("shim: write %s: %v", proto.ShimPidFile, err)
	}
	if p.reaperErr != nil {
		return fmt.Errorf("shim: set child subreaper: %v", p.reaperErr)
	}

	if err := readJSON(proto.ConfigFile, &s.cfg); err != nil {
		return fmt.Errorf("shim: read %s: %v", proto.ConfigFile, err)
	}
	if err := proto.CheckVersion(s.cfg.Version); err != nil {
		return fmt.Errorf("shim: %s: %v", proto.ConfigFile, err)
	}
	// From here on the report is in the daemon's version.
	s.report.version = s.cfg.Version
	if err := checkConfig(&s.cfg); err != nil {
		return fmt.Errorf("shim: %s: %v", proto.ConfigFile, err)
	}
	s.log = s.log.WithFields(logrus.Fields{"id": s.cfg.ID, "process": s.cfg.Process})
	s.log.WithFields(logrus.Fields{"action": s.cfg.Action, "bundle": s.cfg.Bundle, "runtime": s.cfg.Runtime,
		"stdin": s.cfg.Stdin, "terminal": s.cfg.Terminal, "version": proto.VersionOf(s.cfg.Version)}).Info("shim started")
	return nil
}

// checkConfig checks what the daemon asked and fills in defaults.
func checkConfig(cfg *proto.Config) error {
	if cfg.ID == "" || cfg.Bundle == "" || cfg.Runtime == "" {
		return errors.New("id, bundle and runtime are required")
	}
	switch cfg.Action {
	case proto.ActionCreate, proto.ActionRun:
	case proto.ActionRestore:
		if cfg.Restore == nil || cfg.Restore.Path == "" {
			return errors.New("restore without a checkpoint path")
		}
	case proto.ActionExec:
		if len(cfg.Spec) == 0 {
			return errors.New("exec without a process spec")
		}
	default:
		return fmt.Errorf("unknown action %q", cfg.Action)
	}
	if cfg.LogPath != "" && !filepath.IsAbs(cfg.LogPath) {
		return fmt.Errorf("log path %q is not absolute", cfg.LogPath)
	}
	if cfg.LogMaxSize == 0 { // below 0: no bound
		cfg.LogMaxSize = defaultLogMaxSize
	}
	return nil
}

func readJSON(name string, v any) error {
	data, err := os.ReadFile(name)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}
