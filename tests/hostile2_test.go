package tests

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// runtimeWrapper writes a runtime that runs body (sh, "$@" the runtime's
// arguments) when its arguments hold verb, and is runc otherwise.
func runtimeWrapper(t *testing.T, verb, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "runc-wrap")
	script := "#!/bin/sh\nfor a; do\n\tif [ \"$a\" = " + verb + " ]; then\n" + body + "\n\tfi\ndone\nexec runc \"$@\"\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestHostileSurrogates: a JSON escape of half a UTF-16 surrogate pair in
// exec's JSON form or update's, which Go would decode to U+FFFD, is
// refused with EINVAL and a reason; a whole pair is taken.
func TestHostileSurrogates(t *testing.T) {
	d := startDaemon(t)
	id := newID("hs")
	d.run(id, demoBundle(t))
	defer d.forceDelete(id)
	d.ctlErr(`exec p1 {"args":["echo","\udcff"]}`+"\n", syscall.EINVAL, []string{`\udcff`, "surrogate"}, id)
	d.ctlErr(`exec p2 {"args":["echo"],"env":["A=\ud83d"]}`+"\n", syscall.EINVAL, []string{`\ud83d`}, id)
	d.ctlErr(`update {"cpu":{"cpus":"\udcff"}}`+"\n", syscall.EINVAL, []string{`\udcff`}, id)
	for _, name := range []string{"p1", "p2"} {
		if _, err := os.Stat(d.path(id, "processes", name)); !os.IsNotExist(err) {
			t.Errorf("processes/%s after a refused exec: %v", name, err)
		}
	}
	d.mustCtl(`exec p3 {"args":["echo","\ud83d\ude00"]}`+"\n", id)
	d.waitContent("0", id, "processes", "p3", "exit")
	if got := d.readTrim(id, "processes", "p3", "stdout"); got != "\U0001F600" {
		t.Errorf("p3 printed %q, want the emoji", got)
	}
}

// TestRemoveVerbs: remove-process and delete-checkpoint follow the rules
// of rmdir processes/NAME and rmdir checkpoints/NAME.
func TestRemoveVerbs(t *testing.T) {
	d := startDaemon(t)
	b := newBundle(t, "sleep", "1000")
	id := newID("rv")
	d.run(id, b)
	defer d.forceDelete(id)
	d.mustCtl("exec busy -- sleep 1000\n", id)
	d.ctlErr("remove-process busy\n", syscall.EBUSY, []string{"running"}, id)
	d.ctlErr("remove-process init\n", syscall.EBUSY, []string{"init"}, id)
	d.ctlErr("remove-process nosuch\n", syscall.ENOENT, []string{"nosuch"}, id)
	d.ctlErr("remove-process\n", syscall.EINVAL, []string{"usage: remove-process NAME"}, id)
	d.mustCtl("exec done -- true\n", id)
	d.waitContent("0", id, "processes", "done", "exit")
	d.mustCtl("remove-process done\n", id)
	if _, err := os.Stat(d.path(id, "processes", "done")); !os.IsNotExist(err) {
		t.Errorf("processes/done after remove-process: %v", err)
	}
	if _, err := os.Stat(d.path(id, "processes", "busy")); err != nil {
		t.Errorf("processes/busy after a refused remove-process: %v", err)
	}

	cp := filepath.Join(b, "checkpoints", "cp1")
	os.MkdirAll(cp, 0o755)
	os.WriteFile(filepath.Join(cp, "config.json"), []byte(`{"name":"cp1"}`), 0o644)
	d.ctlErr("delete-checkpoint nosuch\n", syscall.ENOENT, []string{"nosuch"}, id)
	d.ctlErr("delete-checkpoint ../x\n", syscall.EINVAL, nil, id)
	d.mustCtl("delete-checkpoint cp1\n", id)
	if _, err := os.Stat(cp); !os.IsNotExist(err) {
		t.Errorf("%s after delete-checkpoint: %v", cp, err)
	}
}

// TestHostileUpdateReadBack: a runtime whose update applies the limits
// and then fails; status.resources then says what the kernel has for cpu
// and cpuset too, not what was there before.
func TestHostileUpdateReadBack(t *testing.T) {
	requireIntegration(t)
	wrapper := runtimeWrapper(t, "update", "\t\trunc \"$@\"\n\t\techo '{\"level\":\"error\",\"msg\":\"update failed after applying\"}' >&2\n\t\texit 1")
	d := startDaemon(t, "--runtime", wrapper)
	id := newID("hu")
	d.run(id, newBundle(t, "sleep", "1000"))
	defer d.forceDelete(id)
	pid := d.initPid(id)
	_, err := d.ctl("update cpu-shares=512 cpu-quota=50000 cpu-period=100000 cpuset-cpus=0\n", id)
	if err == nil {
		t.Fatal("the update whose runtime fails succeeded")
	}
	res := d.statusResources(id)
	num := func(keys ...string) int64 {
		n, _ := jsonPath(res, keys...).(float64)
		return int64(n)
	}
	v2 := fileExistsT(hostCgroupFile(t, pid, "cpu", "cpu.max"))
	if v2 {
		b, _ := os.ReadFile(hostCgroupFile(t, pid, "cpu", "cpu.max"))
		if got := strings.TrimSpace(string(b)); got != "50000 100000" || num("cpu", "quota") != 50000 || num("cpu", "period") != 100000 {
			t.Errorf("kernel cpu.max %q, status cpu %v", got, jsonPath(res, "cpu"))
		}
	} else {
		if k := readUintFile(t, hostCgroupFile(t, pid, "cpu", "cpu.shares")); int64(k) != num("cpu", "shares") {
			t.Errorf("kernel cpu.shares %d, status cpu.shares %v", k, jsonPath(res, "cpu", "shares"))
		}
		if k := readUintFile(t, hostCgroupFile(t, pid, "cpu", "cpu.cfs_quota_us")); int64(k) != num("cpu", "quota") {
			t.Errorf("kernel cpu.cfs_quota_us %d, status cpu.quota %v", k, jsonPath(res, "cpu", "quota"))
		}
	}
	b, _ := os.ReadFile(hostCgroupFile(t, pid, "cpuset", "cpuset.cpus"))
	if k := strings.TrimSpace(string(b)); k != "" && jsonPath(res, "cpu", "cpus") != k {
		t.Errorf("kernel cpuset.cpus %q, status cpu.cpus %v", k, jsonPath(res, "cpu", "cpus"))
	}
	if num("cpu", "shares") != 512 && !v2 {
		t.Errorf("status cpu.shares %v: the runtime applied 512 before failing", jsonPath(res, "cpu", "shares"))
	}
}

func fileExistsT(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
