package fsys

import (
	"encoding/json"
	"testing"

	"github.com/ctrfs/ctrfs/runtime"
)

// FuzzParseExecJSON fuzzes the JSON form of exec: what it accepts must pass
// the request's own check and be valid UTF-8 JSON (no byte changed later).
func FuzzParseExecJSON(f *testing.F) {
	for _, s := range []string{
		`{"args":["id"],"cwd":"/"}`, `{"args":["sh","-c","echo hi"],"env":["A=b"]}`,
		`{"user":{"uid":1000,"gid":1000}}`, `{"terminal":true,"args":["sh"]}`, `{"args":[]}`,
		`{"args":["\u00e9"]}`, "{\"args\":[\"\xff\"]}", `{"user":{"uid":4294967294}}`, `{}{}`, `{"x":1}`,
		`{"args":["\udcff"]}`, `{"args":["\ud83d\ude00"]}`, `{"env":["A=\ud83d"]}`, `{"args":["\\udcff"]}`,
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, obj string, stdin bool) {
		args := []string{"p1"}
		if stdin {
			args = append(args, "--stdin")
		}
		req, err := parseExec(args, obj)
		if err != nil {
			if runtime.KindOf(err) != runtime.KindInvalid {
				t.Fatalf("error of unexpected kind: %v", err)
			}
			return
		}
		if err := req.Check(); err != nil {
			t.Fatalf("accepted a request its check refuses: %v", err)
		}
		if !json.Valid(req.Spec) {
			t.Fatalf("accepted invalid JSON %q", req.Spec)
		}
		if runtime.CheckJSONSurrogates("fuzz", req.Spec) != nil {
			t.Fatalf("accepted a lone surrogate escape in %q", req.Spec)
		}
	})
}

// FuzzParseUpdate fuzzes update's JSON and key=value forms: what they
// accept passes the request's check.
func FuzzParseUpdate(f *testing.F) {
	for _, s := range []string{
		`{"cpu":{"shares":512}}`, `{"memory":{"limit":67108864,"swap":-1}}`, `{"pids":{"limit":50}}`,
		`{"blockIO":{"weight":100}}`, `{"cpu":{"cpus":"0-1","mems":"0"}}`, `{"devices":[]}`, `{"pids":{"limit":0}}`,
		`{"memory":{"limit":-2}}`, `{} x`, `{"cpu":{"quota":-1,"period":100000}}`,
		`{"cpu":{"cpus":"\udcff"}}`, `{"cpu":{"mems":"\ud800\udc00"}}`,
	} {
		f.Add(s, "")
	}
	for _, s := range []string{"memory=64M pids=50", "cpuset-cpus=0-1 memory-swap=max", "memory=1x", "pids=-1", "cpu-quota=999"} {
		f.Add("", s)
	}
	f.Fuzz(func(t *testing.T, obj, kv string) {
		var args []string
		if kv != "" {
			args = splitWordsForFuzz(kv)
		}
		req, err := parseUpdate(args, obj)
		if err != nil {
			return
		}
		if err := req.Check(); err != nil {
			t.Fatalf("accepted an update its check refuses: %v", err)
		}
	})
}

func splitWordsForFuzz(s string) []string {
	var out []string
	start := -1
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ' ' {
			if start >= 0 {
				out = append(out, s[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	return out
}
