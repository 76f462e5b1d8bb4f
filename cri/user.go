package cri

import (
	"strconv"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The container's user is resolved by ctrfs, not here: the CRI server
// cannot read the image's files (it is a client of the tree only), so it
// names the user with `create ... --config PATH --user USER[:GROUP]` and
// the daemon looks the names up in the image's /etc/passwd and /etc/group
// (read inside the rootfs, bounded, never through a link out of it), sets
// process.user's uid and gid and adds the user's groups to the spec's
// additionalGids (the pod's supplemental groups).

// criUser is the user of a container, as containerd picks it: run_as_user,
// else run_as_username, else the image's User; run_as_group replaces the
// group. "" is the image's default, root.
func criUser(imageUser string, sc *runtimeapi.LinuxContainerSecurityContext) string {
	u := imageUser
	switch {
	case sc.GetRunAsUser() != nil:
		u = strconv.FormatInt(sc.GetRunAsUser().GetValue(), 10)
	case sc.GetRunAsUsername() != "":
		u = sc.GetRunAsUsername()
	}
	if g := sc.GetRunAsGroup(); g != nil {
		name, _, _ := strings.Cut(u, ":")
		if name == "" {
			name = "0"
		}
		u = name + ":" + strconv.FormatInt(g.GetValue(), 10)
	}
	return u
}
