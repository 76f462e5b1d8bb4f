// Package errmsg shapes error messages for ctrfs's one-line answers: the
// daemon's ctl results and the shim's report both use it.
package errmsg

import (
	"bytes"
	"encoding/json"
	"strings"
)

// OneLine keeps an error message on one line, as every ctl result is one:
// every run of white space (newlines included) becomes one space.
func OneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// LastRuntimeError returns the msg of the last error-level (or fatal) JSON
// log object that the runtime (runc with --log-format json) wrote in out,
// on one line, or "". Objects may be run together or mixed with plain
// text: out may be the runtime's log file or its output on stderr.
func LastRuntimeError(out []byte) string {
	last := ""
	for {
		i := bytes.IndexByte(out, '{')
		if i < 0 {
			return OneLine(last)
		}
		out = out[i:]
		var entry struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		dec := json.NewDecoder(bytes.NewReader(out))
		if err := dec.Decode(&entry); err != nil {
			out = out[1:]
			continue
		}
		out = out[dec.InputOffset():]
		if (entry.Level == "error" || entry.Level == "fatal") && entry.Msg != "" {
			last = entry.Msg
		}
	}
}
