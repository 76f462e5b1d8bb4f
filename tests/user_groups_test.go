package tests

import (
	"encoding/json"
	"slices"
	"syscall"
	"testing"
)

// TestCreateUserGroups: `create --image REF --user-groups none` runs the
// user without the groups the image's /etc/group gives it (Kubernetes'
// Strict supplemental groups policy), with and without --config; with
// --config the primary gid leads process.user.additionalGids, as
// containerd writes it. Bad values are refused with EINVAL and leave
// nothing.
func TestCreateUserGroups(t *testing.T) {
	d := startDaemon(t)
	d.mustCtl("import test/ug:v1 "+dockerSave(t, namedUserImage(t, "app"), "test/ug:v1")+"\n", "images")
	dir := t.TempDir()
	cfg := writeJSON(t, dir, "config.json", map[string]any{
		"ociVersion": "1.0.2",
		"process": map[string]any{
			"args": []string{"id"}, "env": []string{"PATH=/bin"}, "cwd": "/",
			"user": map[string]any{"uid": 0, "gid": 0, "additionalGids": []int{99}},
		},
		"mounts": []map[string]any{{"destination": "/proc", "type": "proc", "source": "proc"}},
		"linux":  map[string]any{"namespaces": []map[string]string{{"type": "pid"}, {"type": "mount"}}},
	})
	for _, c := range []struct {
		id, opts, want string
		gids           []uint32 // process.user.additionalGids, with --config
	}{
		{"image", "", "uid=1234(app) gid=2345(app) groups=3456(extra)\n", nil},
		{"imagegroups", "--user-groups image", "uid=1234(app) gid=2345(app) groups=3456(extra)\n", nil},
		{"imagenone", "--user-groups none", "uid=1234(app) gid=2345(app)\n", nil},
		{"config", "--config " + cfg + " --user app", "uid=1234(app) gid=2345(app) groups=99,2345(app),3456(extra)\n", []uint32{2345, 3456, 99}},
		{"confignone", "--config " + cfg + " --user app --user-groups none", "uid=1234(app) gid=2345(app) groups=99,2345(app)\n", []uint32{2345, 99}},
		{"confignum", "--config " + cfg + " --user 1234 --user-groups none", "uid=1234(app) gid=2345(app) groups=99,2345(app)\n", []uint32{2345, 99}},
	} {
		cmd := "run " + c.id + " --image test/ug:v1 " + c.opts
		if c.gids == nil {
			cmd += " -- id"
		}
		d.mustCtl(cmd + "\n")
		d.waitState(c.id, "stopped")
		if out := d.read(c.id, "processes", "init", "stdout"); out != c.want {
			t.Errorf("%s: id says %q, want %q", c.id, out, c.want)
		}
		if c.gids != nil {
			var spec struct {
				Process struct {
					User struct {
						AdditionalGids []uint32 `json:"additionalGids"`
					} `json:"user"`
				} `json:"process"`
			}
			if err := json.Unmarshal([]byte(d.read(c.id, "config.json")), &spec); err != nil {
				t.Fatal(err)
			}
			if got := spec.Process.User.AdditionalGids; !slices.Equal(got, c.gids) {
				t.Errorf("%s: additionalGids %v, want %v", c.id, got, c.gids)
			}
		}
		d.mustCtl("delete " + c.id + "\n")
	}

	for _, c := range []struct {
		cmd  string
		want string
	}{
		{"create b1 --image test/ug:v1 --user-groups some", `--user-groups "some": want image or none`},
		{"create b1 --image test/ug:v1 --user-groups", "--user-groups"},
		{"create b1 --image test/ug:v1 --user-groups=", "--user-groups: empty value"},
		{"create b1 --image test/ug:v1 --config " + cfg + " --user-groups none", "with --config, for --user only"},
		{"create b1 " + dir + " --user-groups none", "--image only"},
	} {
		d.wantCtlError(c.cmd+"\n", syscall.EINVAL, c.want)
	}
	d.checkNoContainers(t)
}
