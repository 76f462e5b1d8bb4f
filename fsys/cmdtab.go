package fsys

import (
	"context"
	"fmt"
	"strings"

	"github.com/ctrfs/ctrfs/runtime"
)

// A ctl file's verbs are one table (as Plan 9's Cmdtab and lookupcmd): a
// row per verb, holding its name, its usage, its argument parser and the
// function that runs it on the file's target (the runtime for the root's
// ctl, a container, a process). The verbs line of `cat ctl`, the unknown
// verb's error and the parser all come from the rows, and a test holds
// docs/files.md to them. The tables are rootctl.go, containerctl.go and
// processctl.go.

// maxCommandSize is the largest write a ctl file takes.
const maxCommandSize = 64 << 10

// verb is one row of a command table, for target type T. Make rows with
// row or bare, which keep each verb's argument typed.
type verb[T any] struct {
	name  string
	usage string // as the verbs line of `cat ctl` shows it
	// jsonForm, if set, says whether a line's last word, a {JSON} object
	// (see cutJSON), is this verb's argument, given the words between the
	// verb and the object.
	jsonForm func(args []string) bool
	parse    func(args []string, obj string) (any, error)
	run      func(t T, ctx context.Context, arg any) error
}

// row makes a row: parse turns the words after the verb (and the JSON
// object, for a verb with a JSON form) into an argument of type A; run
// carries the order out. run takes the target first, so that a method
// expression (containerCtl.Update) can be a row's runner.
func row[T, A any](name, usage string, parse func(args []string, obj string) (A, error), run func(T, context.Context, A) error) verb[T] {
	return verb[T]{
		name:  name,
		usage: usage,
		parse: func(args []string, obj string) (any, error) {
			a, err := parse(args, obj)
			return a, err
		},
		run: func(t T, ctx context.Context, arg any) error { return run(t, ctx, arg.(A)) },
	}
}

// noArgs is the argument of a verb that takes none.
type noArgs struct{}

// bare makes the row of a verb that takes no argument.
func bare[T any](name string, run func(T, context.Context) error) verb[T] {
	return row(name, name, parseNoArgs, func(t T, ctx context.Context, _ noArgs) error { return run(t, ctx) })
}

func parseNoArgs(args []string, _ string) (noArgs, error) {
	pos, err := parseFlags(args, nil, nil)
	if err != nil {
		return noArgs{}, err
	}
	return noArgs{}, noMore(pos)
}

// withJSON gives the verb a JSON form: a line's last {JSON} object is its
// argument when form accepts the words before it.
func (v verb[T]) withJSON(form func(args []string) bool) verb[T] {
	v.jsonForm = form
	return v
}

// cmdtab is the table of one kind of ctl file.
type cmdtab[T any] []verb[T]

// usage is the verbs line of `cat ctl`: the rows' usages, in order.
func (tab cmdtab[T]) usage() string {
	us := make([]string, len(tab))
	for i, v := range tab {
		us[i] = v.usage
	}
	return strings.Join(us, " | ")
}

// lookup returns the row of the verb called name, or nil.
func (tab cmdtab[T]) lookup(name string) *verb[T] {
	for i := range tab {
		if tab[i].name == name {
			return &tab[i]
		}
	}
	return nil
}

// command is one parsed ctl line: its row and its argument.
type command[T any] struct {
	text string // the line as written, for results
	verb *verb[T]
	arg  any
}

// parse parses a whole write into commands. Nothing runs unless all of it
// parses.
func (tab cmdtab[T]) parse(data []byte) ([]command[T], error) {
	if len(data) > maxCommandSize {
		// The kernel splits a large write(2) into chunks: len(data) is a
		// chunk's size, not the write's, so the text does not quote it.
		return nil, runtime.Errorf(runtime.KindTooBig, "command too large: a ctl write holds at most %d bytes", maxCommandSize)
	}
	var cmds []command[T]
	lines := strings.Split(string(data), "\n")
	many := countCommandLines(lines) > 1
	for n, line := range lines {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		words, obj, err := tab.split(line)
		if err != nil {
			return nil, lineError(many, n, trimmed, err)
		}
		v := tab.lookup(words[0])
		if v == nil {
			return nil, lineError(many, n, trimmed, fmt.Errorf("unknown verb %q (verbs: %s)", words[0], tab.usage()))
		}
		arg, err := v.parse(words[1:], obj)
		if err != nil {
			return nil, lineError(many, n, trimmed, err)
		}
		cmds = append(cmds, command[T]{text: trimmed, verb: v, arg: arg})
	}
	if len(cmds) == 0 {
		return nil, runtime.Errorf(runtime.KindInvalid, "no command given")
	}
	return cmds, nil
}

// split splits a line into words. A last word that is a JSON object is
// taken as written, not split, when it is the verb's JSON argument.
func (tab cmdtab[T]) split(line string) (words []string, obj string, err error) {
	if head, o, ok := cutJSON(line); ok {
		if hw, herr := splitWords(head); herr == nil && len(hw) > 0 {
			if v := tab.lookup(hw[0]); v != nil && v.jsonForm != nil && v.jsonForm(hw[1:]) {
				return hw, o, nil
			}
		}
	}
	words, err = splitWords(line)
	return words, "", err
}

// ctl makes a ctl file whose orders run on t.
func (tab cmdtab[T]) ctl(t T) *ctlFile {
	return &ctlFile{
		verbs:   tab.usage(),
		lastErr: &lastError{},
		parse: func(data []byte) ([]order, error) {
			cmds, err := tab.parse(data)
			orders := make([]order, len(cmds))
			for i, c := range cmds {
				orders[i] = order{text: c.text, run: func(ctx context.Context) error { return c.verb.run(t, ctx, c.arg) }}
			}
			return orders, err
		},
	}
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

// cutJSON splits a line whose last argument is a JSON object, which is
// then taken as written: shell-like word splitting would eat its quotes.
// head is the line before the object; ok is false when no blank-preceded
// word starts with '{'.
func cutJSON(line string) (head, obj string, ok bool) {
	for i := 1; i < len(line); i++ {
		if line[i] == '{' && (line[i-1] == ' ' || line[i-1] == '\t') {
			return line[:i], strings.TrimSpace(line[i:]), true
		}
	}
	return line, "", false
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

// noMore refuses positional words left over.
func noMore(pos []string) error {
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q", pos[0])
	}
	return nil
}

func containsFlag(args []string, flag string) bool {
	for _, a := range args {
		if a == flag || strings.HasPrefix(a, flag+"=") {
			return true
		}
	}
	return false
}
