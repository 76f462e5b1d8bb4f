package fsys

import (
	"context"
	"fmt"
	"strings"

	"github.com/ctrfs/ctrfs/runtime"
)

// rootTable is the verbs of the root ctl; its target is the runtime.
var rootTable = cmdtab[Runtime]{
	row("create", "create ID BUNDLE [opts]", parseCreate(false), Runtime.Create),
	row("run", "run ID BUNDLE [opts]", parseCreate(true), Runtime.Create),
	row("delete", "delete ID [--force]", parseDelete, deleteByID),
}

// parseCreate parses `create ID BUNDLE [opts]`, or run's (start) same.
func parseCreate(start bool) func(args []string, _ string) (runtime.CreateRequest, error) {
	verb := "create"
	if start {
		verb = "run"
	}
	return func(args []string, _ string) (runtime.CreateRequest, error) {
		req := runtime.CreateRequest{Start: start}
		var labels, rtArgs []string
		var logMax string
		pos, err := parseFlags(args,
			map[string]*bool{"--no-pivot": &req.NoPivot, "--stdin": &req.Stdin, "--tty": &req.TTY},
			map[string]func(string){
				"--label":          func(v string) { labels = append(labels, v) },
				"--runtime":        func(v string) { req.Runtime = v },
				"--runtime-arg":    func(v string) { rtArgs = append(rtArgs, v) },
				"--checkpoint":     func(v string) { req.Checkpoint = v },
				"--checkpoint-dir": func(v string) { req.CheckpointDir = v },
				"--log-max-size":   func(v string) { logMax = v },
			})
		if err != nil {
			return req, err
		}
		if len(pos) != 2 {
			return req, fmt.Errorf("usage: %s ID BUNDLE [--label KEY=VALUE]... [--runtime NAME|PATH] [--runtime-arg ARG]... [--no-pivot] [--stdin] [--tty] [--log-max-size SIZE] [--checkpoint NAME [--checkpoint-dir DIR]]", verb)
		}
		req.ID, req.Bundle = pos[0], pos[1]
		req.RuntimeArgs = rtArgs
		for _, l := range labels {
			k, v, ok := strings.Cut(l, "=")
			if !ok {
				return req, fmt.Errorf("--label %q: want KEY=VALUE", l)
			}
			if req.Labels == nil {
				req.Labels = map[string]string{}
			}
			req.Labels[k] = v
		}
		if req.Runtime == "" && containsFlag(args, "--runtime") {
			return req, fmt.Errorf("--runtime: empty name")
		}
		if containsFlag(args, "--checkpoint") {
			if err := runtime.CheckName("checkpoint name", req.Checkpoint); err != nil {
				return req, err
			}
		}
		if containsFlag(args, "--log-max-size") {
			if req.LogMaxSize, err = parseLogMaxSize(logMax); err != nil {
				return req, err
			}
		}
		if req.CheckpointDir == "" && containsFlag(args, "--checkpoint-dir") {
			return req, fmt.Errorf("--checkpoint-dir: empty path")
		}
		return req, req.Check()
	}
}

// deleteArgs is the argument of the root's `delete ID [--force]`.
type deleteArgs struct {
	id    string
	force bool
}

func parseDelete(args []string, _ string) (deleteArgs, error) {
	var a deleteArgs
	pos, err := parseFlags(args, map[string]*bool{"--force": &a.force}, nil)
	if err != nil {
		return a, err
	}
	if len(pos) != 1 {
		return a, fmt.Errorf("usage: delete ID [--force]")
	}
	a.id = pos[0]
	return a, runtime.CheckName("container id", a.id)
}

func deleteByID(rt Runtime, ctx context.Context, a deleteArgs) error {
	c, ok := rt.Get(a.id)
	if !ok {
		return runtime.Errorf(runtime.KindNotFound, "delete: no such container %q", a.id)
	}
	return rt.Delete(ctx, c, a.force)
}
