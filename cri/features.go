package cri

import (
	"errors"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// runtimeFeatures is what Status announces: the supplemental groups
// policies (Strict is create --user-groups none) and ContainerStatus.user
// (procuser.go). A new message each call: gRPC writes a message's size
// cache as it sends it.
func runtimeFeatures() *runtimeapi.RuntimeFeatures {
	return &runtimeapi.RuntimeFeatures{SupplementalGroupsPolicy: true}
}

// runtimeHandlers is Status's list of handlers: the default one ("") only,
// with what it supports.
func (s *Server) runtimeHandlers() []*runtimeapi.RuntimeHandler {
	return []*runtimeapi.RuntimeHandler{{Features: &runtimeapi.RuntimeHandlerFeatures{
		RecursiveReadOnlyMounts: s.rroSupported(),
	}}}
}

// rroSupported says whether recursive read-only mounts work: they need the
// kernel's mount_setattr (Linux 5.12) and runc 1.1 or later (its "rro"
// mount option); the daemon's runtime is the second line of the tree's
// version file ("runtime runc 1.1.5+ds1").
func (s *Server) rroSupported() bool {
	// An invalid call: ENOSYS only where the kernel lacks the syscall.
	if err := unix.MountSetattr(-1, "", 0, &unix.MountAttr{}); errors.Is(err, unix.ENOSYS) {
		return false
	}
	b, err := s.t.Read("version")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && f[0] == "runtime" && f[1] == "runc" {
			major, rest, _ := strings.Cut(f[2], ".")
			minor, _, _ := strings.Cut(rest, ".")
			ma, err1 := strconv.Atoi(major)
			mi, err2 := strconv.Atoi(minor)
			return err1 == nil && err2 == nil && (ma > 1 || ma == 1 && mi >= 1)
		}
	}
	return false
}
