package cri

import (
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Image volumes (Mount.image, the kubelet's KEP-4639): the daemon mounts
// the image's files read-only (create's --image-mount, docs/files.md); the
// CRI only names the image by its digest, resolved as the container's own.

func isImageMount(m *runtimeapi.Mount) bool { return m.GetImage().GetImage() != "" }

// validateImageMount refuses an image mount that cannot be given: a
// writable one (image volumes are read-only, as the KEP says), a container
// path --image-mount cannot carry, a sub-path with "..".
func validateImageMount(m *runtimeapi.Mount) error {
	if !isImageMount(m) {
		return nil
	}
	p := m.GetContainerPath()
	switch {
	case !m.GetReadonly():
		return status.Errorf(codes.InvalidArgument, "mount of image %q at %s: image volumes are read-only; readonly must be set", m.GetImage().GetImage(), p)
	case !strings.HasPrefix(p, "/") || strings.ContainsAny(p, ":\x00"):
		return status.Errorf(codes.InvalidArgument, "mount of image %q at %q: the container path must be absolute, without ':'", m.GetImage().GetImage(), p)
	}
	// The daemon checks the sub-path too; refused here it makes nothing.
	sub := m.GetImageSubPath()
	if strings.HasPrefix(sub, "/") || strings.ContainsRune(sub, 0) || slices.Contains(strings.Split(sub, "/"), "..") {
		return status.Errorf(codes.InvalidArgument, "mount of image %q at %s: sub-path %q must be relative, without \"..\"", m.GetImage().GetImage(), p, sub)
	}
	return nil
}

// imageMountArgs are the create words of the image mounts among mounts, and
// mounts as ContainerStatus reports them: an image mount with its digest
// (ImageSpec.image_ref).
func (s *Server) imageMountArgs(mounts []*runtimeapi.Mount) ([]string, []*runtimeapi.Mount, error) {
	var words []string
	out := make([]*runtimeapi.Mount, 0, len(mounts))
	for _, m := range mounts {
		if !isImageMount(m) {
			out = append(out, m)
			continue
		}
		ref := m.GetImage().GetImage()
		digest := s.resolveImage(ref)
		if digest == "" {
			return nil, nil, status.Errorf(codes.NotFound, "image %q of the mount at %s: not present (pull it first)", ref, m.GetContainerPath())
		}
		arg := digest + ":" + m.GetContainerPath()
		if sub := m.GetImageSubPath(); sub != "" {
			arg += ":" + sub
		}
		words = append(words, "--image-mount", arg)
		c := proto.Clone(m).(*runtimeapi.Mount)
		c.Image.ImageRef = digest
		out = append(out, c)
	}
	return words, out, nil
}
