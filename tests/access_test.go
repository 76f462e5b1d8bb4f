package tests

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The shared-access tests run commands as real non-root callers (setpriv
// sets uid, gid and supplementary groups; the uids need no passwd entry)
// against a daemon mounted with --allow-other --group OPS --read-group RD,
// whose groups groupadd makes for the test.

// accessRole is one kind of caller of the access matrix.
type accessRole struct {
	name   string
	uid    uint32 // 0: root, run as the test itself
	gid    uint32
	groups []uint32
}

// requireAccessTools skips (or fails, under CTRFS_REQUIRE_INTEGRATION=1)
// where the tools that make groups and switch users are missing.
func requireAccessTools(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"setpriv", "groupadd", "groupdel"} {
		if _, err := exec.LookPath(bin); err != nil {
			why := "no " + bin + " in $PATH (util-linux setpriv, passwd's groupadd)"
			if os.Getenv("CTRFS_REQUIRE_INTEGRATION") == "1" {
				t.Fatalf("access prerequisite missing: %s (CTRFS_REQUIRE_INTEGRATION=1)", why)
			}
			t.Skipf("access prerequisite missing: %s", why)
		}
	}
}

// newGroup makes a group with a unique name for the test and returns its
// name and gid; it is deleted when the test ends.
func newGroup(t *testing.T, prefix string) (string, uint32) {
	t.Helper()
	var b [3]byte
	rand.Read(b[:])
	name := prefix + hex.EncodeToString(b[:])
	if out, err := exec.Command("groupadd", name).CombinedOutput(); err != nil {
		t.Fatalf("groupadd %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("groupdel", name).CombinedOutput(); err != nil {
			t.Errorf("groupdel %s: %v: %s", name, err, out)
		}
	})
	g, err := user.LookupGroup(name)
	if err != nil {
		t.Fatal(err)
	}
	gid, err := strconv.ParseUint(g.Gid, 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	return name, uint32(gid)
}

// unusedUID returns a uid no user of this host has.
func unusedUID(t *testing.T) uint32 {
	t.Helper()
	for range 100 {
		var b [4]byte
		rand.Read(b[:])
		uid := 1_000_000 + binary.BigEndian.Uint32(b[:])%1_000_000
		if _, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err != nil {
			return uid
		}
	}
	t.Fatal("no unused uid found")
	return 0
}

// as runs script with sh as role (MNT set to the mountpoint).
func (d *daemon) as(role accessRole, script string) shResult {
	d.tb.Helper()
	if role.uid == 0 {
		return d.sh(script)
	}
	groups := "--clear-groups"
	if len(role.groups) > 0 {
		var gs []string
		for _, g := range role.groups {
			gs = append(gs, strconv.FormatUint(uint64(g), 10))
		}
		groups = "--groups " + strings.Join(gs, ",")
	}
	return d.sh(fmt.Sprintf(`exec setpriv --reuid %d --regid %d %s -- sh -c "$AS_SCRIPT"`, role.uid, role.gid, groups),
		"AS_SCRIPT="+script)
}

// sharedContainer makes an operators' and a read group, starts a daemon
// shared with them, its mountpoint reachable by anyone, and runs a demo
// container on it. It returns the daemon, the container's id and the gids.
func sharedContainer(t *testing.T, prefix string) (d *daemon, id string, ops, rd uint32) {
	t.Helper()
	requireIntegration(t)
	requireAccessTools(t)
	opsName, ops := newGroup(t, "ctrfsop")
	readName, rd := newGroup(t, "ctrfsrd")
	d = startDaemon(t, "--allow-other", "--group", opsName, "--read-group", readName)
	// The temp dir is root's alone (0700): let the callers reach the mount.
	if err := os.Chmod(d.dir, 0o711); err != nil {
		t.Fatal(err)
	}
	id = newID(prefix)
	d.run(id, demoBundle(t))
	t.Cleanup(func() { d.forceDelete(id) })
	return d, id, ops, rd
}

// TestAccessMatrix is the access matrix of docs/files.md (Security): each
// kind of caller tries each kind of use, and gets it or EACCES.
func TestAccessMatrix(t *testing.T) {
	d, id, ops, rd := sharedContainer(t, "access")
	// A process whose stdin the roles write to.
	d.mustCtl("exec feed --stdin -- sh -c 'cat >/dev/null'\n", id)

	other := unusedUID(t)
	roles := []accessRole{
		{name: "root"},
		// Operators are in the read group too (see docs/files.md, Security).
		{name: "operator", uid: unusedUID(t), gid: ops, groups: []uint32{ops, rd}},
		{name: "reader", uid: unusedUID(t), gid: rd, groups: []uint32{rd}},
		// A reader through its primary group alone, no supplementary ones.
		{name: "reader-primary", uid: unusedUID(t), gid: rd},
		{name: "other", uid: other, gid: other},
	}
	// rmdir and remove-process remove an exec that has exited, and
	// delete-checkpoint a checkpoint: each role gets its own.
	cps := filepath.Join(d.readTrim(id, "bundle"), "checkpoints")
	for _, r := range roles {
		for _, p := range []string{"gone-", "rmv-"} {
			d.mustCtl("exec "+p+r.name+" -- true\n", id)
			d.waitContent("0", id, "processes", p+r.name, "exit")
		}
		os.MkdirAll(filepath.Join(cps, "cp-"+r.name), 0o755)
		os.WriteFile(filepath.Join(cps, "cp-"+r.name, "config.json"), []byte(`{"name":"cp-`+r.name+`"}`), 0o644)
	}
	type use struct {
		name   string
		script func(role string) string
		allow  map[string]bool // roles allowed; the others get EACCES
	}
	all := map[string]bool{"root": true, "operator": true, "reader": true, "reader-primary": true}
	writers := map[string]bool{"root": true, "operator": true}
	rootOnly := map[string]bool{"root": true}
	uses := []use{
		{"list root", func(string) string { return `ls "$MNT"` }, all},
		{"read state", func(string) string { return `cat "$MNT/` + id + `/state"` }, all},
		{"read stats", func(string) string { return `cat "$MNT/` + id + `/stats"` }, all},
		{"write ctl", func(string) string { return `echo "update pids=1000" > "$MNT/` + id + `/ctl"` }, writers},
		{"rmdir", func(r string) string { return `rmdir "$MNT/` + id + `/processes/gone-` + r + `"` }, rootOnly},
		{"stdin write", func(string) string { return `echo hello > "$MNT/` + id + `/processes/feed/stdin"` }, writers},
		{"remove-process", func(r string) string { return `echo "remove-process rmv-` + r + `" > "$MNT/` + id + `/ctl"` }, writers},
		{"delete-checkpoint", func(r string) string { return `echo "delete-checkpoint cp-` + r + `" > "$MNT/` + id + `/ctl"` }, writers},
	}
	for _, r := range roles {
		for _, u := range uses {
			res := d.as(r, u.script(r.name))
			switch want := u.allow[r.name]; {
			case want && res.code != 0:
				t.Errorf("%s: %s: want allowed, got %s", r.name, u.name, res)
			case !want && (res.code == 0 || !strings.Contains(res.stderr, "Permission denied")):
				t.Errorf("%s: %s: want EACCES, got %s", r.name, u.name, res)
			}
		}
	}
	// What the refused rmdirs and writes left alone is still there.
	for _, r := range roles[1:] {
		if _, err := os.Stat(d.path(id, "processes", "gone-"+r.name)); err != nil {
			t.Errorf("processes/gone-%s after %s's refused rmdir: %v", r.name, r.name, err)
		}
	}
	if _, err := os.Stat(d.path(id, "processes", "gone-root")); !os.IsNotExist(err) {
		t.Errorf("processes/gone-root after root's rmdir: %v, want ENOENT", err)
	}
	for _, r := range roles {
		_, perr := os.Stat(d.path(id, "processes", "rmv-"+r.name))
		_, cerr := os.Stat(filepath.Join(cps, "cp-"+r.name))
		if gone := writers[r.name]; gone != os.IsNotExist(perr) || gone != os.IsNotExist(cerr) {
			t.Errorf("%s: after remove-process and delete-checkpoint: process %v, checkpoint %v (want removed: %v)", r.name, perr, cerr, gone)
		}
	}
	// An operator outside the read group cannot reach the ctl files: the
	// directories are the read group's (one group a file).
	opOnly := accessRole{name: "operator-only", uid: unusedUID(t), gid: ops, groups: []uint32{ops}}
	if res := d.as(opOnly, `echo "update pids=1000" > "$MNT/`+id+`/ctl"`); res.code == 0 || !strings.Contains(res.stderr, "Permission denied") {
		t.Errorf("operator outside the read group: write ctl: want EACCES, got %s", res)
	}
	// A reader may not read ctl files: they are the operators' (0660).
	reader := roles[2]
	if res := d.as(reader, `cat "$MNT/`+id+`/ctl"`); res.code == 0 || !strings.Contains(res.stderr, "Permission denied") {
		t.Errorf("reader: read ctl: want EACCES, got %s", res)
	}
	// An operator reads the result of its own order from the same open file.
	if res := d.as(roles[1], `exec 3<>"$MNT/`+id+`/ctl"; echo "update pids=1000" >&3; cat <&3`); res.code != 0 || !strings.Contains(res.stdout, "ok: update pids=1000") {
		t.Errorf("operator: exec 3<>ctl: %s", res)
	}
}

// TestAccessModes checks that ls -l shows the truth: owner root, the read
// group on directories and read-only files, the operators' group on ctl and
// stdin, nothing for others.
func TestAccessModes(t *testing.T) {
	d, id, ops, rd := sharedContainer(t, "modes")
	dir := os.ModeDir | 0o550
	for _, c := range []struct {
		path string
		mode os.FileMode
		gid  uint32
	}{
		{"", dir, rd},
		{"ctl", 0o660, ops},
		{"events", 0o440, rd},
		{"version", 0o440, rd},
		{"ps", 0o440, rd},
		{id, dir, rd},
		{id + "/ctl", 0o660, ops},
		{id + "/state", 0o440, rd},
		{id + "/stats", 0o440, rd},
		{id + "/status", 0o440, rd},
		{id + "/config.json", 0o440, rd},
		{id + "/checkpoints", dir, rd},
		{id + "/processes", dir, rd},
		{id + "/processes/init", dir, rd},
		{id + "/processes/init/ctl", 0o660, ops},
		{id + "/processes/init/stdin", 0o660, ops},
		{id + "/processes/init/stdout", 0o440, rd},
		{id + "/processes/init/wait", 0o440, rd},
		{id + "/processes/init/exit", 0o440, rd},
	} {
		st, err := os.Stat(d.path(c.path))
		if err != nil {
			t.Errorf("stat %s: %v", c.path, err)
			continue
		}
		sys := st.Sys().(*syscall.Stat_t)
		if st.Mode() != c.mode || sys.Uid != 0 || sys.Gid != c.gid {
			t.Errorf("/%s: %v %d:%d, want %v 0:%d", c.path, st.Mode(), sys.Uid, sys.Gid, c.mode, c.gid)
		}
	}
	// The same, as ls -l prints it to a member of the read group.
	reader := accessRole{name: "reader", uid: unusedUID(t), gid: rd, groups: []uint32{rd}}
	res := d.as(reader, `ls -ln "$MNT/`+id+`"`)
	if res.code != 0 {
		t.Fatalf("reader: ls -ln: %s", res)
	}
	for _, want := range []string{
		fmt.Sprintf("-rw-rw---- 1 0 %d", ops),
		fmt.Sprintf("-r--r----- 1 0 %d", rd),
		fmt.Sprintf("dr-xr-x--- 1 0 %d", rd),
	} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("ls -ln %s has no %q:\n%s", id, want, res.stdout)
		}
	}
}

// TestAccessFlags checks the refused combinations of the sharing flags:
// each fails at once, with a message, and mounts nothing.
func TestAccessFlags(t *testing.T) {
	requireIntegration(t)
	mnt := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--group", "root"}, "need --allow-other"},
		{[]string{"--read-group", "root"}, "need --allow-other"},
		{[]string{"--allow-other"}, "name at least one"},
		{[]string{"--allow-other", "--group", "root", "--read-group", "0"}, "the same group"},
		{[]string{"--allow-other", "--group", "no-such-group-ctrfs"}, "no-such-group-ctrfs"},
	} {
		args := append(append([]string{"mount", "--state-dir", t.TempDir()}, c.args...), mnt)
		out, err := exec.Command(ctrfsBin, args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("ctrfs %s: %v, %q; want a failure saying %q", strings.Join(args, " "), err, out, c.want)
		}
	}
	if isMounted(mnt) {
		t.Errorf("%s is mounted after refused flags", mnt)
	}
}
