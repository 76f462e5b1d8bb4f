package cri

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// validateContainer refuses, before anything is made, what a container
// config asks that is wrong or that ctrfs-cri cannot give.
func (s *Server) validateContainer(cfg *runtimeapi.ContainerConfig) error {
	sc := cfg.GetLinux().GetSecurityContext()
	// A group without a user would run as the image's user with another
	// group than its own: the kubelet's API forbids it (containerd too).
	if sc.GetRunAsGroup() != nil && sc.GetRunAsUser() == nil && sc.GetRunAsUsername() == "" {
		return status.Error(codes.InvalidArgument, "run_as_group is set without run_as_user or run_as_username")
	}
	for _, m := range cfg.GetMounts() {
		// A recursive read-only mount ("rro", applyMounts) must be
		// read-only and private: propagation would bring writable mounts
		// in or out.
		if m.GetRecursiveReadOnly() {
			switch {
			case !m.GetReadonly():
				return status.Errorf(codes.InvalidArgument, "mount %s: recursive_read_only needs readonly", m.GetContainerPath())
			case m.GetPropagation() != runtimeapi.MountPropagation_PROPAGATION_PRIVATE:
				return status.Errorf(codes.InvalidArgument, "mount %s: recursive_read_only needs private propagation, not %v", m.GetContainerPath(), m.GetPropagation())
			case !s.rroSupported():
				return status.Errorf(codes.Unimplemented, "mount %s: recursive read-only mounts need mount_setattr (Linux 5.12) and runc 1.1", m.GetContainerPath())
			}
		}
		if err := validateImageMount(m); err != nil {
			return err
		}
	}
	return nil
}
