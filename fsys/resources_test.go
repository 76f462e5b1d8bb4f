package fsys

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ctrfs/ctrfs/runtime"
)

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "4096": 4096, "512b": 512, "512B": 512,
		"1k": 1024, "1K": 1024, "1kb": 1024, "1KiB": 1024, "2kib": 2048,
		"64M": 64 << 20, "64m": 64 << 20, "64MB": 64 << 20, "64MiB": 64 << 20,
		"1g": 1 << 30, "1.5G": 3 << 29, "1.5k": 1536, "0.1k": 102,
		"2t": 2 << 40, "1p": 1 << 50, "8191p": 8191 << 50,
	} {
		got, err := ParseBytes(in)
		if err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "-5M", "1.5", "abc", "1x", "1 M", "M", "1.M", "1e6", "0x10",
		"8192p", "99999999999999999999", "1mbb", "1ib", "+5", " 5"} {
		if got, err := ParseBytes(bad); err == nil {
			t.Errorf("ParseBytes(%q) = %d, want an error", bad, got)
		}
	}
}

// parseOne parses one container ctl line.
func parseOne(t *testing.T, line string) (parsed, error) {
	t.Helper()
	cmds, err := parseCommands([]byte(line), containerGrammar)
	if err != nil {
		return parsed{}, err
	}
	if len(cmds) != 1 {
		t.Fatalf("%q: %d commands", line, len(cmds))
	}
	return cmds[0], nil
}

func TestParseUpdate(t *testing.T) {
	for in, want := range map[string]string{
		"update memory=64M pids=50":                                                     `{"memory":{"limit":67108864},"pids":{"limit":50}}`,
		"update memory=max":                                                             `{"memory":{"limit":-1}}`,
		"update memory=-1 memory-swap=unlimited":                                        `{"memory":{"limit":-1,"swap":-1}}`,
		"update memory=256M memory-swap=512M memory-reservation=128m":                   `{"memory":{"limit":268435456,"reservation":134217728,"swap":536870912}}`,
		"update cpu-shares=512 cpu-quota=50000 cpu-period=100000":                       `{"cpu":{"shares":512,"quota":50000,"period":100000}}`,
		"update cpu-share=2 cpu-quota=-1":                                               `{"cpu":{"shares":2,"quota":-1}}`,
		"update cpuset-cpus=0-1,3 cpuset-mems=0":                                        `{"cpu":{"cpus":"0-1,3","mems":"0"}}`,
		"update pids-limit=max":                                                         `{"pids":{"limit":-1}}`,
		"update blkio-weight=500":                                                       `{"blockIO":{"weight":500}}`,
		`update {"cpu":{"shares":512}}`:                                                 `{"cpu":{"shares":512}}`,
		`update   {"memory": {"limit": 67108864, "swap": -1}, "pids": {"limit": 10}}  `: `{"memory":{"limit":67108864,"swap":-1},"pids":{"limit":10}}`,
		`update {"cpu":{"cpus":"0"}}`:                                                   `{"cpu":{"cpus":"0"}}`,
	} {
		cmd, err := parseOne(t, in)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		got, _ := json.Marshal(cmd.arg.(runtime.UpdateRequest).Resources)
		if string(got) != want {
			t.Errorf("%q = %s, want %s", in, got, want)
		}
	}
}

func TestParseUpdateErrors(t *testing.T) {
	for _, c := range []struct{ in, msg string }{
		{"update", "usage"},
		{"update memory", "KEY=VALUE"},
		{"update memory=", "size"},
		{"update memory=abc", "size"},
		{"update memory=-5M", "size"},
		{"update memory=0", "-1 for no limit"},
		{"update memory=1.5", "fraction"},
		{"update memory=9999999p", "too large"},
		{"update bogus=1", "unknown key"},
		{"update --memory=1M", "unknown key"},
		{"update memory=1M memory=2M", "twice"},
		{"update pids=50 pids-limit=60", "twice"},
		{"update memory=64M memory-swap=32M", "below the memory limit"},
		{"update memory=-1 memory-swap=32M", "below the memory limit"},
		{"update cpu-shares=1", "2 to 262144"},
		{"update cpu-shares=262145", "2 to 262144"},
		{"update cpu-shares=-2", "whole number"},
		{"update cpu-quota=999", "at least 1000"},
		{"update cpu-quota=-2", "at least 1000"},
		{"update cpu-quota=1.5", "whole number"},
		{"update cpu-period=999", "1000 to 1000000"},
		{"update cpu-period=1000001", "1000 to 1000000"},
		{"update cpuset-cpus=", "empty"},
		{"update cpuset-cpus=a", "bad element"},
		{"update cpuset-cpus=3-1", "below the start"},
		{"update cpuset-cpus=0,,1", "bad element"},
		{"update cpuset-cpus=99999", "bad element"},
		{"update pids=0", "at least 1"},
		{"update pids=-2", "at least 1"},
		{"update pids=many", "whole number"},
		{"update blkio-weight=5", "10 to 1000"},
		{"update blkio-weight=70000", "10 to 1000"},
		{`update {"memory":`, "bad JSON"},
		{`update {"memory":{"limit":"1M"}}`, "bad JSON"},
		{`update {"memroy":{"limit":1}}`, "unknown field"},
		{`update {}`, "nothing to change"},
		{`update {"memory":{}}`, "nothing to change"},
		{`update {"cpu":{"cpus":""}}`, "nothing to change"},
		{`update {"devices":[]}`, "devices cannot be changed"},
		{`update {"hugepageLimits":[{"pageSize":"2MB","limit":1}]}`, "hugepageLimits"},
		{`update {"memory":{"kernel":1}}`, "memory.kernel"},
		{`update {"memory":{"swappiness":10}}`, "memory.swappiness"},
		{`update {"cpu":{"idle":1}}`, "cpu.burst and cpu.idle"},
		{`update {"blockIO":{"throttleReadBpsDevice":[]}}`, "only blockIO.weight"},
		{`update {"pids":{"limit":0}}`, "at least 1"},
		{`update {"cpu":{"shares":1}} extra`, "after the JSON object"},
		{`update {"cpu":{"shares":2}}{"cpu":{"shares":3}}`, "after the JSON object"},
		{`update memory=1M {"cpu":{"shares":2}}`, "not both"},
	} {
		_, err := parseOne(t, c.in)
		if err == nil {
			t.Errorf("%q: no error", c.in)
			continue
		}
		if runtime.KindOf(err) != runtime.KindInvalid || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%q: %v (kind %d), want EINVAL containing %q", c.in, err, runtime.KindOf(err), c.msg)
		}
	}
}

func TestCutJSON(t *testing.T) {
	for _, c := range []struct{ in, head, obj string }{
		{`update {"a":1}`, "update ", `{"a":1}`},
		{`update	{"a":"it's"}  `, "update\t", `{"a":"it's"}`},
		{`update x{"a":1}`, `update x{"a":1}`, ""},
		{`{"a":1}`, `{"a":1}`, ""},
	} {
		head, obj, ok := cutJSON(c.in)
		if head != c.head || obj != c.obj || ok != (c.obj != "") {
			t.Errorf("cutJSON(%q) = %q, %q, %v", c.in, head, obj, ok)
		}
	}
	// A quote inside the JSON that word splitting would choke on.
	cmd, err := parseOne(t, `update {"cpu":{"cpus":"0"},"memory":{"limit":1048576}}`)
	if err != nil || cmd.arg.(runtime.UpdateRequest).Resources.CPU.Cpus != "0" {
		t.Errorf("JSON update: %+v, %v", cmd.arg, err)
	}
}
