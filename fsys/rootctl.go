package fsys

import (
	"context"
	"fmt"
	"strings"

	"github.com/ctrfs/ctrfs/runtime"
)

// rootTable is the verbs of the root ctl; its target is the runtime.
var rootTable = cmdtab[Runtime]{
	row("create", "create ID BUNDLE|--image REF [opts]", parseCreate(false), Runtime.Create),
	row("run", "run ID BUNDLE|--image REF [opts]", parseCreate(true), Runtime.Create),
	row("delete", "delete ID [--force]", parseDelete, deleteByID),
}

// parseCreate parses `create ID BUNDLE [opts]`, or run's (start) same; or
// `create ID --image REF [--env K=V]... [--workdir D] [--user U] [opts]
// [--] [ARGS...]`, where the words after `--` are the command as written
// (flags included) and other words after the id are the command too.
func parseCreate(start bool) func(args []string, _ string) (runtime.CreateRequest, error) {
	verb := "create"
	if start {
		verb = "run"
	}
	return func(args []string, _ string) (runtime.CreateRequest, error) {
		req := runtime.CreateRequest{Start: start}
		var labels, rtArgs []string
		args, command, dashdash := cutCommand(args)
		var logMax string
		var imageMounts []string
		pos, err := parseFlags(args,
			map[string]*bool{"--no-pivot": &req.NoPivot, "--stdin": &req.Stdin, "--tty": &req.TTY},
			map[string]func(string){
				"--label":          func(v string) { labels = append(labels, v) },
				"--runtime":        func(v string) { req.Runtime = v },
				"--runtime-arg":    func(v string) { rtArgs = append(rtArgs, v) },
				"--checkpoint":     func(v string) { req.Checkpoint = v },
				"--checkpoint-dir": func(v string) { req.CheckpointDir = v },
				"--image":          func(v string) { req.Image = v },
				"--env":            func(v string) { req.Env = append(req.Env, v) },
				"--workdir":        func(v string) { req.Workdir = v },
				"--user":           func(v string) { req.User = v },
				"--user-groups":    func(v string) { req.UserGroups = v },
				"--log-max-size":   func(v string) { logMax = v },
				"--config":         func(v string) { req.Config = v },
				"--log-path":       func(v string) { req.LogPath = v },
				"--image-mount":    func(v string) { imageMounts = append(imageMounts, v) },
			})
		if err != nil {
			return req, err
		}
		switch {
		case containsFlag(args, "--image"):
			if err := imageCreateArgs(verb, &req, args, pos, command); err != nil {
				return req, err
			}
		case dashdash || containsFlag(args, "--env") || containsFlag(args, "--workdir") || containsFlag(args, "--user") || containsFlag(args, "--user-groups"):
			return req, fmt.Errorf("--env, --workdir, --user, --user-groups and a command after -- are for --image only")
		case len(pos) != 2:
			return req, fmt.Errorf("usage: %s ID BUNDLE [--label KEY=VALUE]... [--runtime NAME|PATH] [--runtime-arg ARG]... [--no-pivot] [--stdin] [--tty] [--log-max-size SIZE] [--log-path PATH] [--checkpoint NAME [--checkpoint-dir DIR]]", verb)
		default:
			req.ID, req.Bundle = pos[0], pos[1]
		}
		req.RuntimeArgs = rtArgs
		for _, v := range imageMounts {
			m, err := runtime.ParseImageMount(v)
			if err != nil {
				return req, err
			}
			req.ImageMounts = append(req.ImageMounts, m)
		}
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
		if req.LogPath == "" && containsFlag(args, "--log-path") {
			return req, fmt.Errorf("--log-path: empty path")
		}
		if req.CheckpointDir == "" && containsFlag(args, "--checkpoint-dir") {
			return req, fmt.Errorf("--checkpoint-dir: empty path")
		}
		return req, req.Check()
	}
}

// cutCommand splits the words of a create at the first `--`: the words
// after it are a command, taken as written.
func cutCommand(args []string) (opts, command []string, dashdash bool) {
	for i, a := range args {
		if a == "--" {
			return args[:i], args[i+1:], true
		}
	}
	return args, nil, false
}

// imageCreateArgs fills the id and the command of `create ID --image REF`.
func imageCreateArgs(verb string, req *runtime.CreateRequest, args, pos, command []string) error {
	if len(pos) < 1 {
		return fmt.Errorf("usage: %s ID --image REF [--env K=V]... [--workdir DIR] [--user USER[:GROUP]] [--user-groups image|none] [--config PATH] [--image-mount REF:/PATH[:SUBPATH]]... [--label KEY=VALUE]... [--runtime NAME|PATH] [--runtime-arg ARG]... [--stdin] [--tty] [--] [ARGS...]", verb)
	}
	req.ID, req.Args = pos[0], append(pos[1:len(pos):len(pos)], command...)
	for _, o := range []struct {
		flag string
		val  string
	}{{"--image", req.Image}, {"--workdir", req.Workdir}, {"--user", req.User}, {"--user-groups", req.UserGroups}, {"--config", req.Config}} {
		if o.val == "" && containsFlag(args, o.flag) {
			return fmt.Errorf("%s: empty value", o.flag)
		}
	}
	return nil
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
