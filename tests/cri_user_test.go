package tests

import (
	"strings"
	"testing"

	"github.com/ctrfs/ctrfs/images/imagetest"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// namedUserImage is the busybox test image with an /etc/passwd and
// /etc/group of its own and User set to user.
func namedUserImage(tb testing.TB, user string) v1.Image {
	tb.Helper()
	layer, err := imagetest.Layer(imagetest.Dir("etc/"),
		imagetest.File("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1234:2345:app:/home/app:/bin/sh\n"),
		imagetest.File("etc/group", "root:x:0:\napp:x:2345:\nextra:x:3456:other,app\nstaff:x:4567:\n"))
	if err != nil {
		tb.Fatal(err)
	}
	img, err := mutate.AppendLayers(testImage(tb, "user"), layer)
	if err != nil {
		tb.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		tb.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Config.User = user
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		tb.Fatal(err)
	}
	return img
}

// TestCRIImageUserName: an image whose User is a name (`app`,
// `app:staff`), or a pod that asks run_as_username, runs as the ids of the
// image's own /etc/passwd and /etc/group, the user's groups added (not
// with the Strict supplemental groups policy); a name
// the image does not know fails the create (InvalidArgument) and leaves
// nothing.
func TestCRIImageUserName(t *testing.T) {
	hostOnly(t, guestSlowCRI)
	reg, _, d, c := criSetup(t)
	dir := t.TempDir()
	refs := map[string]string{}
	for tag, user := range map[string]string{"name": "app", "group": "app:staff", "none": "", "ghost": "ghost"} {
		refs[tag] = reg + "/test/user:" + tag
		if err := imagetest.Push(refs[tag], namedUserImage(t, user)); err != nil {
			t.Fatal(err)
		}
		c.run("pull", refs[tag])
	}
	pod := writeJSON(t, dir, "pod.json", map[string]any{
		"metadata":      map[string]any{"name": "users", "namespace": "default", "uid": "uid-users"},
		"log_directory": dir,
		"linux":         map[string]any{"security_context": map[string]any{"namespace_options": map[string]any{}}},
	})
	podID := lastLine(c.run("runp", pod))
	for _, tc := range []struct {
		name, image string
		sc          map[string]any
		want        string
	}{
		// The primary gid is in the groups too, as containerd puts it.
		{"name", refs["name"], nil, "uid=1234(app) gid=2345(app) groups=2345(app),3456(extra)"},
		{"group", refs["group"], nil, "uid=1234(app) gid=4567(staff) groups=4567(staff)"},
		{"username", refs["none"], map[string]any{"run_as_username": "app"}, "uid=1234(app) gid=2345(app) groups=2345(app),3456(extra)"},
		{"uid", refs["name"], map[string]any{"run_as_user": map[string]any{"value": 1234}, "supplemental_groups": []int{99}}, "uid=1234(app) gid=2345(app) groups=99,2345(app),3456(extra)"},
		{"strict", refs["name"], map[string]any{"run_as_user": map[string]any{"value": 1234}, "supplemental_groups": []int{99}, "supplemental_groups_policy": 1}, "uid=1234(app) gid=2345(app) groups=99,2345(app)"},
		{"rungroup", refs["none"], map[string]any{"run_as_username": "app", "run_as_group": map[string]any{"value": 4567}}, "uid=1234(app) gid=4567(staff) groups=4567(staff)"},
	} {
		ctr := writeJSON(t, dir, tc.name+".json", map[string]any{
			"metadata": map[string]any{"name": tc.name},
			"image":    map[string]any{"image": tc.image},
			"command":  []string{"id"},
			"log_path": tc.name + ".log",
			"linux":    map[string]any{"security_context": tc.sc},
		})
		id := lastLine(c.run("create", podID, ctr, pod))
		c.run("start", id)
		d.waitState(id, "stopped")
		if out := strings.TrimSpace(c.run("logs", id)); out != tc.want {
			t.Errorf("%s: id says %q, want %q", tc.name, out, tc.want)
		}
		c.run("rm", id)
	}
	ctr := writeJSON(t, dir, "ghost.json", map[string]any{
		"metadata": map[string]any{"name": "ghost"}, "image": map[string]any{"image": refs["ghost"]}, "command": []string{"id"},
	})
	before := len(d.containers())
	if out, err := c.try("create", podID, ctr, pod); err == nil || !strings.Contains(err.Error(), "InvalidArgument") || !strings.Contains(err.Error(), "ghost") || !strings.Contains(err.Error(), "/etc/passwd") {
		t.Errorf("create with an unknown user: %v\n%s", err, out)
	}
	if after := len(d.containers()); after != before {
		t.Errorf("%d containers in the tree after a refused create, %d before", after, before)
	}
	c.run("stopp", podID)
	c.run("rmp", podID)
}
