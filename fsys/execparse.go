package fsys

import (
	"fmt"
	"strings"

	"github.com/ctrfs/ctrfs/runtime"
)

const execUsage = "usage: exec NAME [--stdin] [--tty] [--cwd DIR] [--env KEY=VALUE]... [--user UID[:GID]] [--log-max-size SIZE] [--log-path PATH] [--] COMMAND [ARG]... | exec NAME [--stdin] [--log-max-size SIZE] [--log-path PATH] {OCI process JSON}"

// parseExec parses an exec line, in either form:
//
//	exec NAME [--stdin] [--tty] [--cwd DIR] [--env K=V]... [--user UID[:GID]] [--log-max-size SIZE] [--log-path PATH] [--] ARGV...
//	exec NAME [--stdin] [--log-max-size SIZE] [--log-path PATH] {one-line JSON of an OCI process spec}
//
// Options come before the command, which starts after `--` or at the first
// word that is not an option; from there every word is the command's. The
// JSON form is taken raw from the line (obj, see cutJSON), not split into
// words: a `{` that starts a word after NAME and options only.
func parseExec(args []string, obj string) (runtime.ExecRequest, error) {
	var req runtime.ExecRequest
	if obj != "" {
		req.Name = args[0]
		for i := 1; i < len(args); i++ {
			o := args[i]
			name, val, hasVal := strings.Cut(o, "=")
			switch {
			case o == "--stdin":
				req.Stdin = true
			case name == "--log-max-size" || name == "--log-path":
				if !hasVal {
					if i+1 >= len(args) {
						return req, fmt.Errorf("option %s needs a value", name)
					}
					i++
					val = args[i]
				}
				if name == "--log-path" {
					if req.LogPath = val; val == "" {
						return req, fmt.Errorf("--log-path: empty path")
					}
					continue
				}
				var err error
				if req.LogMaxSize, err = parseLogMaxSize(val); err != nil {
					return req, err
				}
			default:
				return req, fmt.Errorf("option %q: a JSON process spec takes only --stdin, --log-max-size and --log-path; say the rest in the JSON", o)
			}
		}
		req.Spec = []byte(obj)
		return req, req.Check()
	}
	if len(args) == 0 {
		return req, fmt.Errorf("%s", execUsage)
	}
	req.Name = args[0]
	rest := args[1:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			req.Args = rest[i+1:]
			break
		}
		if !strings.HasPrefix(a, "-") {
			req.Args = rest[i:]
			break
		}
		name, val, hasVal := strings.Cut(a, "=")
		switch name {
		case "--stdin", "--tty":
			if hasVal {
				return req, fmt.Errorf("option %s takes no value", name)
			}
			if name == "--stdin" {
				req.Stdin = true
			} else {
				req.Terminal = true
			}
			continue
		case "--cwd", "--env", "--user", "--log-max-size", "--log-path":
		default:
			return req, fmt.Errorf("unknown option %q (%s)", a, execUsage)
		}
		if !hasVal {
			if i+1 >= len(rest) {
				return req, fmt.Errorf("option %s needs a value", name)
			}
			i++
			val = rest[i]
		}
		switch name {
		case "--cwd":
			req.Cwd = val
		case "--env":
			req.Env = append(req.Env, val)
		case "--user":
			req.User = val
		case "--log-path":
			if req.LogPath = val; val == "" {
				return req, fmt.Errorf("--log-path: empty path")
			}
		case "--log-max-size":
			var err error
			if req.LogMaxSize, err = parseLogMaxSize(val); err != nil {
				return req, err
			}
		}
	}
	if len(req.Args) == 0 {
		req.Args = nil // "no command" is the request's own error
	}
	return req, req.Check()
}

// execJSONForm reports whether the words before a JSON object, after the
// verb, make the JSON form: NAME and options only. Otherwise the brace
// belongs to the command's arguments (`exec x -- echo {}`).
func execJSONForm(words []string) bool {
	if len(words) == 0 {
		return false
	}
	for i := 1; i < len(words); i++ {
		w := words[i]
		if !strings.HasPrefix(w, "-") || w == "--" {
			return false
		}
		if w == "--log-max-size" || w == "--log-path" {
			i++ // its value, in the next word
		}
	}
	return true
}
