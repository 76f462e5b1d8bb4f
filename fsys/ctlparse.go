package fsys

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"github.com/ctrfs/ctrfs/runtime"
)

// maxCommandSize is the largest write a ctl file takes.
const maxCommandSize = 64 << 10

const (
	rootVerbs      = "create ID BUNDLE [opts] | run ID BUNDLE [opts] | delete ID [--force]"
	containerVerbs = "start | pause | resume | kill [SIGNAL] [--all] | exec NAME [opts] -- ARGV... | exec NAME [--stdin] {JSON} | " +
		"update KEY=VALUE...|{JSON} | checkpoint NAME [--exit] [--tcp] [--unix-sockets] [--shell] [--empty-ns NS] [--dir DIR] | delete [--force]"
	processVerbs = "kill [SIGNAL] | close-stdin | resize COLS ROWS"
)

// grammar says which ctl file a write is for: the root's, a container's or
// a process's.
type grammar int

const (
	rootGrammar grammar = iota
	containerGrammar
	processGrammar
)

// command is one parsed ctl line.
type command struct {
	text string // the line as written, for results
	verb string

	create     runtime.CreateRequest // create, run
	id         string                // root delete
	force      bool                  // delete
	signal     syscall.Signal        // kill
	all        bool                  // kill
	update     runtime.UpdateRequest // update
	exec       runtime.ExecRequest   // exec
	cols, rows uint16                // resize
	// checkpoint is the checkpoint order.
	checkpoint runtime.CheckpointRequest
}

// parseCommands parses a whole write into commands of grammar g. Nothing
// runs unless all of it parses.
func parseCommands(data []byte, g grammar) ([]command, error) {
	if len(data) > maxCommandSize {
		// The kernel splits a large write(2) into chunks: len(data) is a
		// chunk's size, not the write's, so the text does not quote it.
		return nil, runtime.Errorf(runtime.KindTooBig, "command too large: a ctl write holds at most %d bytes", maxCommandSize)
	}
	var cmds []command
	lines := strings.Split(string(data), "\n")
	many := countCommandLines(lines) > 1
	for n, line := range lines {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		words, err := splitWords(line)
		var obj string
		if g == containerGrammar {
			// update and exec take their JSON object as written (see
			// cutJSON), not split into words.
			if head, o, ok := cutJSON(line); ok {
				if hw, herr := splitWords(head); herr == nil && len(hw) > 0 &&
					(hw[0] == "update" || hw[0] == "exec" && execJSONForm(hw[1:])) {
					words, obj, err = hw, o, nil
				}
			}
		}
		if err != nil {
			return nil, lineError(many, n, trimmed, err)
		}
		cmd := command{text: trimmed, verb: words[0]}
		switch g {
		case rootGrammar:
			err = parseRootCommand(&cmd, words[1:])
		case containerGrammar:
			err = parseContainerCommand(&cmd, words[1:], obj)
		default:
			err = parseProcessCommand(&cmd, words[1:])
		}
		if err != nil {
			return nil, lineError(many, n, trimmed, err)
		}
		cmds = append(cmds, cmd)
	}
	if len(cmds) == 0 {
		return nil, runtime.Errorf(runtime.KindInvalid, "no command given")
	}
	return cmds, nil
}

func countCommandLines(lines []string) int {
	n := 0
	for _, l := range lines {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
			n++
		}
	}
	return n
}

// lineError says which line was bad, and its number when there were several.
func lineError(many bool, n int, line string, err error) error {
	if many {
		return runtime.Errorf(runtime.KindInvalid, "line %d: %s: %v", n+1, line, err)
	}
	return runtime.Errorf(runtime.KindInvalid, "%s: %v", line, err)
}

func parseRootCommand(cmd *command, args []string) error {
	switch cmd.verb {
	case "create", "run":
		return parseCreate(cmd, args)
	case "delete":
		pos, err := parseFlags(args, map[string]*bool{"--force": &cmd.force}, nil)
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			return fmt.Errorf("usage: delete ID [--force]")
		}
		cmd.id = pos[0]
		return runtime.CheckName("container id", cmd.id)
	}
	return fmt.Errorf("unknown verb %q (verbs: %s)", cmd.verb, rootVerbs)
}

func parseCreate(cmd *command, args []string) error {
	req := &cmd.create
	req.Start = cmd.verb == "run"
	var labels, rtArgs []string
	pos, err := parseFlags(args,
		map[string]*bool{"--no-pivot": &req.NoPivot, "--stdin": &req.Stdin, "--tty": &req.TTY},
		map[string]func(string){
			"--label":          func(v string) { labels = append(labels, v) },
			"--runtime":        func(v string) { req.Runtime = v },
			"--runtime-arg":    func(v string) { rtArgs = append(rtArgs, v) },
			"--checkpoint":     func(v string) { req.Checkpoint = v },
			"--checkpoint-dir": func(v string) { req.CheckpointDir = v },
		})
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return fmt.Errorf("usage: %s ID BUNDLE [--label KEY=VALUE]... [--runtime NAME|PATH] [--runtime-arg ARG]... [--no-pivot] [--stdin] [--tty] [--checkpoint NAME [--checkpoint-dir DIR]]", cmd.verb)
	}
	req.ID, req.Bundle = pos[0], pos[1]
	req.RuntimeArgs = rtArgs
	for _, l := range labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			return fmt.Errorf("--label %q: want KEY=VALUE", l)
		}
		if req.Labels == nil {
			req.Labels = map[string]string{}
		}
		req.Labels[k] = v
	}
	if req.Runtime == "" && containsFlag(args, "--runtime") {
		return fmt.Errorf("--runtime: empty name")
	}
	if containsFlag(args, "--checkpoint") {
		if err := runtime.CheckName("checkpoint name", req.Checkpoint); err != nil {
			return err
		}
	}
	if req.CheckpointDir == "" && containsFlag(args, "--checkpoint-dir") {
		return fmt.Errorf("--checkpoint-dir: empty path")
	}
	return req.Check()
}

// parseCheckpoint parses `checkpoint NAME [opts]`.
func parseCheckpoint(cmd *command, args []string) error {
	req := &cmd.checkpoint
	pos, err := parseFlags(args,
		map[string]*bool{"--exit": &req.Exit, "--tcp": &req.TCP, "--unix-sockets": &req.UnixSockets, "--shell": &req.Shell},
		map[string]func(string){
			"--empty-ns": func(v string) { req.EmptyNS = append(req.EmptyNS, v) },
			"--dir":      func(v string) { req.Dir = v },
		})
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("usage: checkpoint NAME [--exit] [--tcp] [--unix-sockets] [--shell] [--empty-ns network] [--dir DIR]")
	}
	req.Name = pos[0]
	if req.Dir == "" && containsFlag(args, "--dir") {
		return fmt.Errorf("--dir: empty path")
	}
	return req.Check()
}

func containsFlag(args []string, flag string) bool {
	for _, a := range args {
		if a == flag || strings.HasPrefix(a, flag+"=") {
			return true
		}
	}
	return false
}

func parseContainerCommand(cmd *command, args []string, obj string) error {
	var pos []string
	var err error
	switch cmd.verb {
	case "update":
		return parseUpdate(cmd, args, obj)
	case "checkpoint":
		return parseCheckpoint(cmd, args)
	case "start", "pause", "resume":
		pos, err = parseFlags(args, nil, nil)
	case "delete":
		pos, err = parseFlags(args, map[string]*bool{"--force": &cmd.force}, nil)
	case "kill":
		pos, err = parseKill(cmd, args, true)
	case "exec":
		return parseExec(cmd, args, obj)
	default:
		return fmt.Errorf("unknown verb %q (verbs: %s)", cmd.verb, containerVerbs)
	}
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q", pos[0])
	}
	return nil
}

// parseKill parses `kill [SIGNAL]` (and, for a container, --all).
func parseKill(cmd *command, args []string, withAll bool) ([]string, error) {
	// Accept the kill(1) habit: "kill -9", "kill -KILL".
	if len(args) > 0 && strings.HasPrefix(args[0], "-") && !strings.HasPrefix(args[0], "--") {
		args = append([]string{args[0][1:]}, args[1:]...)
	}
	bools := map[string]*bool{}
	if withAll {
		bools["--all"] = &cmd.all
	}
	pos, err := parseFlags(args, bools, nil)
	if err != nil {
		return nil, err
	}
	cmd.signal = syscall.SIGTERM
	if len(pos) > 0 {
		if cmd.signal, err = parseSignal(pos[0]); err != nil {
			return nil, err
		}
		pos = pos[1:]
	}
	return pos, nil
}

func parseProcessCommand(cmd *command, args []string) error {
	var pos []string
	var err error
	switch cmd.verb {
	case "kill":
		pos, err = parseKill(cmd, args, false)
	case "close-stdin":
		pos, err = parseFlags(args, nil, nil)
	case "resize":
		if pos, err = parseFlags(args, nil, nil); err != nil {
			return err
		}
		if len(pos) != 2 {
			return fmt.Errorf("usage: resize COLS ROWS")
		}
		if cmd.cols, err = parseDimension("COLS", pos[0]); err != nil {
			return err
		}
		if cmd.rows, err = parseDimension("ROWS", pos[1]); err != nil {
			return err
		}
		pos = nil
	default:
		return fmt.Errorf("unknown verb %q (verbs: %s)", cmd.verb, processVerbs)
	}
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q", pos[0])
	}
	return nil
}

// parseDimension parses a terminal's width or height: 1 to 65535.
func parseDimension(what, s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("resize: %s %q: want a number from 1 to 65535", what, s)
	}
	return uint16(n), nil
}

// parseFlags separates --flags (anywhere after the verb) from positional
// words. Boolean flags take no value; valued flags take "--f V" or "--f=V".
// Any other word starting with '-' is an error, so nothing that looks like
// a flag ever reaches the runtime as an argument.
func parseFlags(args []string, bools map[string]*bool, valued map[string]func(string)) ([]string, error) {
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			pos = append(pos, a)
			continue
		}
		name, val, hasVal := strings.Cut(a, "=")
		if b, ok := bools[name]; ok && !hasVal {
			*b = true
			continue
		}
		set, ok := valued[name]
		if !ok {
			return nil, fmt.Errorf("unknown option %q", a)
		}
		if !hasVal {
			if i+1 >= len(args) {
				return nil, fmt.Errorf("option %s needs a value", name)
			}
			i++
			val = args[i]
		}
		set(val)
	}
	return pos, nil
}
