package cri

import (
	"os"
	"strings"

	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// applySeccomp sets the spec's seccomp filter from the container's (or
// sandbox's) security context, as containerd does: RuntimeDefault is
// docker's default profile (github.com/moby/profiles/seccomp, widened by
// the capabilities the spec already has, so it goes after them);
// Localhost is a profile file on this host in docker's JSON format;
// Unconfined, or nothing asked, is no filter; a privileged container has
// none whatever is asked. The deprecated seccomp_profile_path
// ("runtime/default", "docker/default", "unconfined", "localhost/PATH")
// counts when the structured field is unset.
func applySeccomp(sp *specs.Spec, privileged bool, prof *runtimeapi.SecurityProfile, path string) error {
	if privileged {
		return nil
	}
	typ, ref := runtimeapi.SecurityProfile_Unconfined, ""
	switch {
	case prof != nil:
		typ, ref = prof.ProfileType, prof.LocalhostRef
	case path == "runtime/default" || path == "docker/default":
		typ = runtimeapi.SecurityProfile_RuntimeDefault
	case strings.HasPrefix(path, "localhost/"):
		typ, ref = runtimeapi.SecurityProfile_Localhost, strings.TrimPrefix(path, "localhost/")
	case path == "" || path == "unconfined":
	default:
		return status.Errorf(codes.InvalidArgument, "seccomp profile path %q: want runtime/default, unconfined or localhost/PATH", path)
	}
	var (
		filter *specs.LinuxSeccomp
		err    error
	)
	switch typ {
	case runtimeapi.SecurityProfile_Unconfined:
		return nil
	case runtimeapi.SecurityProfile_RuntimeDefault:
		filter, err = seccomp.GetDefaultProfile(sp)
	case runtimeapi.SecurityProfile_Localhost:
		if !strings.HasPrefix(ref, "/") {
			return status.Errorf(codes.InvalidArgument, "seccomp localhost profile %q: not an absolute path", ref)
		}
		var body []byte
		if body, err = os.ReadFile(ref); err != nil {
			return status.Errorf(codes.InvalidArgument, "seccomp localhost profile: %v", err)
		}
		filter, err = seccomp.LoadProfile(string(body), sp)
	default:
		return status.Errorf(codes.InvalidArgument, "seccomp profile type %v: unknown", typ)
	}
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "seccomp profile: %v", err)
	}
	sp.Linux.Seccomp = filter
	return nil
}
