package cri

import (
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestApplySeccomp(t *testing.T) {
	dir := t.TempDir()
	local := filepath.Join(dir, "block.json")
	if err := os.WriteFile(local, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["sethostname"],"action":"SCMP_ACT_ERRNO"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	prof := func(typ runtimeapi.SecurityProfile_ProfileType, ref string) *runtimeapi.SecurityProfile {
		return &runtimeapi.SecurityProfile{ProfileType: typ, LocalhostRef: ref}
	}
	for _, c := range []struct {
		name       string
		privileged bool
		prof       *runtimeapi.SecurityProfile
		path       string
		want       specs.LinuxSeccompAction // "" for no filter
		code       codes.Code
	}{
		{name: "nothing asked"},
		{name: "unconfined", prof: prof(runtimeapi.SecurityProfile_Unconfined, "")},
		{name: "default", prof: prof(runtimeapi.SecurityProfile_RuntimeDefault, ""), want: specs.ActErrno},
		{name: "default, privileged", privileged: true, prof: prof(runtimeapi.SecurityProfile_RuntimeDefault, "")},
		{name: "localhost", prof: prof(runtimeapi.SecurityProfile_Localhost, local), want: specs.ActAllow},
		{name: "old path, default", path: "runtime/default", want: specs.ActErrno},
		{name: "old path, localhost", path: "localhost/" + local, want: specs.ActAllow},
		{name: "old path, unconfined", path: "unconfined"},
		{name: "structured wins", prof: prof(runtimeapi.SecurityProfile_Unconfined, ""), path: "runtime/default"},
		{name: "relative", prof: prof(runtimeapi.SecurityProfile_Localhost, "block.json"), code: codes.InvalidArgument},
		{name: "missing file", prof: prof(runtimeapi.SecurityProfile_Localhost, filepath.Join(dir, "none")), code: codes.InvalidArgument},
		{name: "bad old path", path: "whatever", code: codes.InvalidArgument},
	} {
		sp := baseSpec()
		err := applySeccomp(sp, c.privileged, c.prof, c.path)
		if status.Code(err) != c.code {
			t.Errorf("%s: %v, want %v", c.name, err, c.code)
			continue
		}
		var got specs.LinuxSeccompAction
		if sp.Linux.Seccomp != nil {
			got = sp.Linux.Seccomp.DefaultAction
		}
		if err == nil && got != c.want {
			t.Errorf("%s: default action %q, want %q", c.name, got, c.want)
		}
	}
}

func TestValidateContainer(t *testing.T) {
	s := &Server{}
	group := &runtimeapi.Int64Value{Value: 5}
	for _, c := range []struct {
		name string
		cfg  *runtimeapi.ContainerConfig
		code codes.Code
	}{
		{"empty", &runtimeapi.ContainerConfig{}, codes.OK},
		{"group without user", &runtimeapi.ContainerConfig{Linux: &runtimeapi.LinuxContainerConfig{
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{RunAsGroup: group}}}, codes.InvalidArgument},
		{"group with user name", &runtimeapi.ContainerConfig{Linux: &runtimeapi.LinuxContainerConfig{
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{RunAsGroup: group, RunAsUsername: "app"}}}, codes.OK},
		{"image volume", &runtimeapi.ContainerConfig{Mounts: []*runtimeapi.Mount{{ContainerPath: "/v", Readonly: true,
			Image: &runtimeapi.ImageSpec{Image: "busybox"}, ImageSubPath: "etc"}}}, codes.OK},
		{"image volume, writable", &runtimeapi.ContainerConfig{Mounts: []*runtimeapi.Mount{{ContainerPath: "/v",
			Image: &runtimeapi.ImageSpec{Image: "busybox"}}}}, codes.InvalidArgument},
		{"image volume, path with ':'", &runtimeapi.ContainerConfig{Mounts: []*runtimeapi.Mount{{ContainerPath: "/v:w", Readonly: true,
			Image: &runtimeapi.ImageSpec{Image: "busybox"}}}}, codes.InvalidArgument},
		{"image volume, sub-path with '..'", &runtimeapi.ContainerConfig{Mounts: []*runtimeapi.Mount{{ContainerPath: "/v", Readonly: true,
			Image: &runtimeapi.ImageSpec{Image: "busybox"}, ImageSubPath: "etc/../.."}}}, codes.InvalidArgument},
		{"rro, writable", &runtimeapi.ContainerConfig{Mounts: []*runtimeapi.Mount{{ContainerPath: "/m",
			RecursiveReadOnly: true}}}, codes.InvalidArgument},
		{"rro, shared", &runtimeapi.ContainerConfig{Mounts: []*runtimeapi.Mount{{ContainerPath: "/m", Readonly: true,
			RecursiveReadOnly: true, Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL}}}, codes.InvalidArgument},
	} {
		if err := s.validateContainer(c.cfg); status.Code(err) != c.code {
			t.Errorf("%s: %v, want %v", c.name, err, c.code)
		}
	}
}
