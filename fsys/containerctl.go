package fsys

import (
	"context"
	"fmt"
	"strings"
	"syscall"

	"github.com/ctrfs/ctrfs/runtime"
)

// containerCtl is the target of a container's ctl: the container, and the
// runtime that deletes it.
type containerCtl struct {
	Container
	rt Runtime
}

// containerTable is the verbs of ID/ctl.
var containerTable = cmdtab[containerCtl]{
	bare("start", containerCtl.Start),
	bare("pause", containerCtl.Pause),
	bare("resume", containerCtl.Resume),
	row("kill", "kill [SIGNAL] [--all]", parseKill(true), func(c containerCtl, ctx context.Context, a killArgs) error {
		return c.Kill(ctx, a.signal, a.all)
	}),
	row("exec", "exec NAME [opts] -- ARGV... | exec NAME [--stdin] {JSON}", parseExec, containerCtl.Exec).withJSON(execJSONForm),
	row("update", "update KEY=VALUE...|{JSON}", parseUpdate, containerCtl.Update).withJSON(func([]string) bool { return true }),
	row("checkpoint", "checkpoint NAME [--exit] [--tcp] [--unix-sockets] [--shell] [--empty-ns NS] [--dir DIR]", parseCheckpoint, containerCtl.Checkpoint),
	// rmdir of an exited exec or of a checkpoint, as verbs: rmdir is
	// root's alone (directories are not group-writable), ctl is the
	// operators' too.
	row("remove-process", "remove-process NAME", parseWord("remove-process NAME"), func(c containerCtl, _ context.Context, name string) error {
		return c.RemoveProcess(name)
	}),
	row("delete-checkpoint", "delete-checkpoint NAME", parseWord("delete-checkpoint NAME"), func(c containerCtl, _ context.Context, name string) error {
		return c.DeleteCheckpoint(name)
	}),
	row("delete", "delete [--force]", parseForce, func(c containerCtl, ctx context.Context, force bool) error {
		return c.rt.Delete(ctx, c.Container, force)
	}),
}

// killArgs is the argument of kill: a container's, or a process's (never
// all).
type killArgs struct {
	signal syscall.Signal
	all    bool
}

// parseKill parses `kill [SIGNAL]` (and, for a container, --all).
func parseKill(withAll bool) func(args []string, _ string) (killArgs, error) {
	return func(args []string, _ string) (killArgs, error) {
		a := killArgs{signal: syscall.SIGTERM}
		// Accept the kill(1) habit: "kill -9", "kill -KILL".
		if len(args) > 0 && strings.HasPrefix(args[0], "-") && !strings.HasPrefix(args[0], "--") {
			args = append([]string{args[0][1:]}, args[1:]...)
		}
		bools := map[string]*bool{}
		if withAll {
			bools["--all"] = &a.all
		}
		pos, err := parseFlags(args, bools, nil)
		if err != nil {
			return a, err
		}
		if len(pos) > 0 {
			if a.signal, err = parseSignal(pos[0]); err != nil {
				return a, err
			}
			pos = pos[1:]
		}
		return a, noMore(pos)
	}
}

// parseCheckpoint parses `checkpoint NAME [opts]`.
func parseCheckpoint(args []string, _ string) (runtime.CheckpointRequest, error) {
	var req runtime.CheckpointRequest
	pos, err := parseFlags(args,
		map[string]*bool{"--exit": &req.Exit, "--tcp": &req.TCP, "--unix-sockets": &req.UnixSockets, "--shell": &req.Shell},
		map[string]func(string){
			"--empty-ns": func(v string) { req.EmptyNS = append(req.EmptyNS, v) },
			"--dir":      func(v string) { req.Dir = v },
		})
	if err != nil {
		return req, err
	}
	if len(pos) != 1 {
		return req, fmt.Errorf("usage: checkpoint NAME [--exit] [--tcp] [--unix-sockets] [--shell] [--empty-ns network] [--dir DIR]")
	}
	req.Name = pos[0]
	if req.Dir == "" && containsFlag(args, "--dir") {
		return req, fmt.Errorf("--dir: empty path")
	}
	return req, req.Check()
}

// parseForce parses `delete [--force]`.
func parseForce(args []string, _ string) (bool, error) {
	var force bool
	pos, err := parseFlags(args, map[string]*bool{"--force": &force}, nil)
	if err != nil {
		return false, err
	}
	return force, noMore(pos)
}
