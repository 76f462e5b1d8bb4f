package runtime

import "testing"

func TestOffersIgnoreMode(t *testing.T) {
	for _, c := range []struct {
		help string
		want bool
	}{
		{"   --manage-cgroups-mode value  cgroups mode: 'soft' (default), 'full' and 'strict'\n   --bundle value", false},      // runc 1.1.5
		{"   --manage-cgroups-mode value  cgroups mode: soft|full|strict|ignore (default: \"soft\")\n   --bundle value", true}, // runc 1.2
		{"   --ignore-something\n   --manage-cgroups-mode value  cgroups mode: soft", false},
		{"", false},
	} {
		if got := offersIgnoreMode(c.help); got != c.want {
			t.Errorf("offersIgnoreMode(%q) = %v, want %v", c.help, got, c.want)
		}
	}
}

func TestMountOf(t *testing.T) {
	mounts := []cgroupMount{
		{point: "/sys/fs/cgroup", v2: true},
		{point: "/sys/fs/cgroup/memory", controllers: map[string]bool{"memory": true}},
		{point: "/sys/fs/cgroup/mem", controllers: map[string]bool{"x": true}},
	}
	for dir, want := range map[string]string{
		"/sys/fs/cgroup/memory/r2": "/sys/fs/cgroup/memory",
		"/sys/fs/cgroup/memoryx":   "/sys/fs/cgroup",
		"/sys/fs/cgroup/r2":        "/sys/fs/cgroup",
		"/sys/fs/cgroup":           "/sys/fs/cgroup",
	} {
		m, ok := mountOf(mounts, dir)
		if !ok || m.point != want {
			t.Errorf("mountOf(%s) = %q, %v; want %q", dir, m.point, ok, want)
		}
	}
	if _, ok := mountOf(mounts, "/tmp/x"); ok {
		t.Error("mountOf(/tmp/x) found a mount")
	}
}
