package runtime

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"
	"unicode/utf8"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ExecRequest is what `exec NAME ...` asks: one more process in a running
// container. It comes in two forms: the argv form (Args and the options
// beside it) and the JSON form (Spec, a one-line OCI process spec). In
// both, what is not given comes from the container's own process spec,
// except the terminal, which is never inherited: it is a choice of how the
// process is attached, not a property of the image.
type ExecRequest struct {
	Name string
	// Args is the command of the argv form.
	Args []string
	// Cwd, when set, replaces the container's working directory.
	Cwd string
	// Env adds KEY=VALUE pairs to the container's environment, replacing
	// a KEY it has.
	Env []string
	// User is "UID" or "UID:GID", numbers; without GID the container's GID
	// stays.
	User string
	// Terminal runs the process on a terminal (argv form: --tty).
	Terminal bool
	// Stdin gives the process a stdin fed from processes/NAME/stdin; without
	// it the process reads /dev/null. Both forms take it.
	Stdin bool
	// Spec is the JSON form: its top-level fields replace the container's;
	// "terminal" is false unless it says true.
	Spec []byte
	// LogMaxSize bounds the process's output logs (0: no bound); nil:
	// the container's.
	LogMaxSize *int64
	// LogPath, when set, is an absolute path where the process's shim
	// writes its output again in the CRI log format (logpath.go).
	LogPath string
}

// The size of a new terminal, when the spec gives none.
const defaultCols, defaultRows = 80, 24

// reservedProcessNames are the names of files the container's state
// directory holds beside its process directories (and the temporary files
// of their atomic writes start with a dot, which no name can).
var reservedProcessNames = map[string]bool{recordFile: true, specCopyFile: true, oomFile: true, imageBundleDir: true, checkpointFlightFile: true}

// Check validates everything that can be checked without the container:
// the parser calls it so that a whole write is checked before any of it
// runs.
func (r *ExecRequest) Check() error {
	if err := checkLogMaxSize(r.LogMaxSize); err != nil {
		return err
	}
	if err := CheckName("process name", r.Name); err != nil {
		return err
	}
	if reservedProcessNames[r.Name] {
		return Errorf(KindInvalid, "process name %q is reserved: the container's state directory uses it", r.Name)
	}
	if err := checkLogPath("exec", r.LogPath); err != nil {
		return err
	}
	if r.Spec != nil {
		if !utf8.Valid(r.Spec) {
			return Errorf(KindInvalid, "exec: the process spec is not valid UTF-8: JSON cannot carry other bytes exactly")
		}
		if r.Args != nil || r.Cwd != "" || r.Env != nil || r.User != "" || r.Terminal {
			return Errorf(KindInvalid, "exec: a JSON process spec takes only --stdin; say the rest in the JSON")
		}
		_, err := parseUserSpec(r.Spec)
		return err
	}
	if len(r.Args) == 0 {
		return Errorf(KindInvalid, "exec: no command (empty argv): exec NAME [options] -- COMMAND [ARG]...")
	}
	if r.Cwd != "" && !path.IsAbs(r.Cwd) {
		return Errorf(KindInvalid, "exec: --cwd %q must be an absolute path", r.Cwd)
	}
	for _, e := range r.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return Errorf(KindInvalid, "exec: --env %q: want KEY=VALUE", e)
		}
	}
	if r.User != "" {
		if _, _, _, err := parseUser(r.User); err != nil {
			return err
		}
	}
	return checkStrings(r.Args, r.Env, []string{r.Cwd})
}

// maxID is the largest uid or gid runc takes: its user package refuses
// anything above 1<<31-1 ("uids and gids must be in range
// 0-2147483647"), though the kernel's uid_t goes to 4294967294.
const maxID = 1<<31 - 1

// parseUser parses "UID" or "UID:GID" (numbers: there is no user database
// to look names up in, the container's /etc/passwd being the image's).
func parseUser(s string) (uid, gid uint32, hasGID bool, err error) {
	u, g, hasGID := strings.Cut(s, ":")
	bad := Errorf(KindInvalid, "exec: --user %q: want UID or UID:GID, numbers from 0 to %d (runc takes no more)", s, maxID)
	uid64, err1 := strconv.ParseUint(u, 10, 32)
	if err1 != nil || uid64 > maxID {
		return 0, 0, false, bad
	}
	var gid64 uint64
	if hasGID {
		var err2 error
		if gid64, err2 = strconv.ParseUint(g, 10, 32); err2 != nil || gid64 > maxID {
			return 0, 0, false, bad
		}
	}
	return uint32(uid64), uint32(gid64), hasGID, nil
}

// checkIDs refuses ids of a process spec's user that runc cannot take.
func checkIDs(u specs.User) error {
	for _, id := range append([]uint32{u.UID, u.GID}, u.AdditionalGids...) {
		if id > maxID {
			return Errorf(KindInvalid, "exec: user id %d: uids and gids go from 0 to %d (runc takes no more)", id, maxID)
		}
	}
	return nil
}

// parseUserSpec checks the JSON form: one JSON object whose fields are all
// OCI process fields, those given valid on their own.
func parseUserSpec(raw []byte) (map[string]json.RawMessage, error) {
	if err := CheckJSONSurrogates("exec: the process spec", raw); err != nil {
		return nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return nil, Errorf(KindInvalid, "exec: the process spec is not one JSON object: %v", jsonErr(err))
	}
	var p specs.Process
	if err := strictDecode(raw, &p); err != nil {
		return nil, Errorf(KindInvalid, "exec: the process spec: %v", jsonErr(err))
	}
	if _, ok := fields["args"]; ok && len(p.Args) == 0 {
		return nil, Errorf(KindInvalid, "exec: no command (empty args)")
	}
	if _, ok := fields["cwd"]; ok && !path.IsAbs(p.Cwd) {
		return nil, Errorf(KindInvalid, "exec: cwd %q must be an absolute path", p.Cwd)
	}
	if err := checkEnv(p.Env); err != nil {
		return nil, err
	}
	if err := checkIDs(p.User); err != nil {
		return nil, err
	}
	return fields, checkStrings(p.Args, p.Env, []string{p.Cwd})
}

func checkEnv(env []string) error {
	for _, e := range env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return Errorf(KindInvalid, "exec: env %q: want KEY=VALUE", e)
		}
	}
	return nil
}

func strictDecode(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("data after the JSON object")
	}
	return nil
}

func jsonErr(err error) string {
	if err == nil {
		return "null"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// buildExecSpec makes the process spec of an exec from the container's
// process spec (base, JSON) and the request, and checks it.
func buildExecSpec(base []byte, r *ExecRequest) ([]byte, *specs.Process, error) {
	var p specs.Process
	if r.Spec != nil {
		fields, err := parseUserSpec(r.Spec)
		if err != nil {
			return nil, nil, err
		}
		merged := map[string]json.RawMessage{}
		if err := json.Unmarshal(base, &merged); err != nil {
			return nil, nil, Errorf(KindInternal, "exec: the container's process spec: %v", err)
		}
		delete(merged, "terminal")
		delete(merged, "consoleSize")
		for k, v := range fields {
			merged[k] = v
		}
		raw, _ := json.Marshal(merged)
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, nil, Errorf(KindInvalid, "exec: the process spec: %v", jsonErr(err))
		}
	} else {
		if err := json.Unmarshal(base, &p); err != nil {
			return nil, nil, Errorf(KindInternal, "exec: the container's process spec: %v", err)
		}
		p.Args = append([]string(nil), r.Args...)
		p.Terminal = r.Terminal
		p.ConsoleSize = nil
		if r.Cwd != "" {
			p.Cwd = r.Cwd
		}
		p.Env = mergeEnv(p.Env, r.Env)
		if r.User != "" {
			uid, gid, hasGID, err := parseUser(r.User)
			if err != nil {
				return nil, nil, err
			}
			p.User.UID = uid
			if hasGID {
				p.User.GID = gid
			}
		}
	}
	if p.Terminal && p.ConsoleSize == nil {
		// A terminal of 0x0 breaks programs that ask its size (stty size
		// fails): start at the classic size, until a resize.
		p.ConsoleSize = &specs.Box{Height: defaultRows, Width: defaultCols}
	}
	if len(p.Args) == 0 {
		return nil, nil, Errorf(KindInvalid, "exec: no command (empty args)")
	}
	if !path.IsAbs(p.Cwd) {
		return nil, nil, Errorf(KindInvalid, "exec: cwd %q must be an absolute path", p.Cwd)
	}
	if err := checkEnv(p.Env); err != nil {
		return nil, nil, err
	}
	if err := checkStrings(p.Args, p.Env, []string{p.Cwd}); err != nil {
		return nil, nil, err
	}
	raw, err := json.Marshal(&p)
	if err != nil {
		return nil, nil, Errorf(KindInternal, "exec: %v", err)
	}
	return raw, &p, nil
}

// mergeEnv returns base with add's pairs, each replacing base's pair of the
// same key, in place, or appended.
func mergeEnv(base, add []string) []string {
	out := append([]string(nil), base...)
	for _, kv := range add {
		k, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, old := range out {
			if ok, _, _ := strings.Cut(old, "="); ok == k {
				out[i], replaced = kv, true
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}

// checkStrings refuses NUL bytes, which no argv, environment or path can
// hold, and bytes that are not UTF-8: the process spec reaches runc, and
// runc its init, as JSON, which would change them to U+FFFD.
func checkStrings(lists ...[]string) error {
	for _, l := range lists {
		for _, s := range l {
			if strings.ContainsRune(s, 0) {
				return Errorf(KindInvalid, "exec: %q holds a NUL byte", s)
			}
			if err := CheckUTF8("exec", s); err != nil {
				return err
			}
		}
	}
	return nil
}

// CheckUTF8 refuses a string that is not valid UTF-8 (EINVAL): ctrfs keeps
// what it is given in JSON (state.json, process.json, the runtime's own
// JSON), which cannot carry other bytes, and would otherwise change them
// silently to U+FFFD.
func CheckUTF8(what, s string) error {
	if utf8.ValidString(s) {
		return nil
	}
	return Errorf(KindInvalid, "%s: %q is not valid UTF-8: ctrfs keeps arguments, environment, labels and paths in JSON, which cannot carry other bytes exactly", what, s)
}
