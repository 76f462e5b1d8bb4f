package images

import (
	"bytes"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// SpecOptions are what `create ID --image REF` adds to the image config.
type SpecOptions struct {
	ID       string   // the container id: the hostname
	Rootfs   string   // root.path (the overlay mount), absolute or bundle-relative
	Env      []string // K=V, over the image's
	Workdir  string   // over the image's WorkingDir
	User     string   // over the image's User: uid[:gid] or name[:group]
	Args     []string // replace the image's Cmd (after its Entrypoint)
	Terminal bool
	// NoUserGroups: the user's groups of the image's /etc/group are not
	// added (create --user-groups none).
	NoUserGroups bool
}

// StopSignalAnnotation carries the image's StopSignal (as containerd names it).
const StopSignalAnnotation = "org.opencontainers.image.stopSignal"

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Spec returns the OCI runtime spec for running the image whose config is
// rawConfig: the defaults of DefaultSpec, then the image config (Entrypoint
// and Cmd, Env, WorkingDir, User, StopSignal, Labels as annotations), then
// o. Names in User are looked up in rootfs's /etc/passwd and /etc/group
// (read beneath rootfs, never through a symlink out of it); rootfs must be
// the mounted root when User has names, and may be "" otherwise. Bytes of
// args, env and labels are kept exact.
func Spec(rawConfig []byte, rootfs string, o SpecOptions) (*specs.Spec, error) {
	cf, err := v1.ParseConfigFile(bytes.NewReader(rawConfig))
	if err != nil {
		return nil, wrapf(ErrInvalid, err, "bad image config")
	}
	c := cf.Config
	s := DefaultSpec(o.ID)
	s.Root.Path = o.Rootfs
	s.Process.Terminal = o.Terminal

	args := c.Cmd
	if len(o.Args) > 0 {
		args = o.Args
	}
	s.Process.Args = append(append([]string{}, c.Entrypoint...), args...)
	if len(s.Process.Args) == 0 {
		return nil, errorf(ErrInvalid, "image has no Entrypoint or Cmd, and no command was given")
	}

	env, err := mergeEnv(c.Env, o.Env)
	if err != nil {
		return nil, err
	}
	s.Process.Env = env

	s.Process.Cwd = "/"
	if c.WorkingDir != "" {
		s.Process.Cwd = c.WorkingDir
	}
	if o.Workdir != "" {
		s.Process.Cwd = o.Workdir
	}
	if !path.IsAbs(s.Process.Cwd) {
		return nil, errorf(ErrInvalid, "working directory %q is not absolute", s.Process.Cwd)
	}

	user := c.User
	if o.User != "" {
		user = o.User
	}
	u, err := resolveUser(rootfs, user, !o.NoUserGroups)
	if err != nil {
		return nil, err
	}
	s.Process.User = u

	if len(c.Labels) > 0 {
		s.Annotations = map[string]string{}
		for k, v := range c.Labels {
			s.Annotations[k] = v
		}
	}
	if c.StopSignal != "" {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[StopSignalAnnotation] = c.StopSignal
	}
	return s, nil
}

// mergeEnv is the image's env with over's K=V replacing same-named ones,
// PATH defaulted if neither sets it.
func mergeEnv(image, over []string) ([]string, error) {
	var out []string
	at := map[string]int{}
	add := func(kv string, strict bool) error {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.IndexByte(kv, 0) >= 0 {
			if strict {
				return errorf(ErrInvalid, "env %q: want K=V", kv)
			}
			return nil
		}
		if i, ok := at[k]; ok {
			out[i] = kv
			return nil
		}
		at[k] = len(out)
		out = append(out, kv)
		return nil
	}
	for _, kv := range image {
		add(kv, false)
	}
	for _, kv := range over {
		if err := add(kv, true); err != nil {
			return nil, err
		}
	}
	if _, ok := at["PATH"]; !ok {
		out = append([]string{defaultPath}, out...)
	}
	return out, nil
}

// DefaultSpec is what `runc spec` gives, as containerd adapts it for
// images: a writable root, no terminal, the hostname the container id, and
// docker's default capabilities rather than runc's three (images expect to
// chown, setuid, bind low ports as root).
func DefaultSpec(id string) *specs.Spec {
	caps := []string{
		"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
		"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
		"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
	}
	return &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: "rootfs"},
		Process: &specs.Process{
			User: specs.User{},
			Args: []string{"sh"},
			Env:  []string{defaultPath},
			Cwd:  "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
			NoNewPrivileges: true,
		},
		Hostname: id,
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		},
		Linux: &specs.Linux{
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			},
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace}, {Type: specs.CgroupNamespace},
			},
			MaskedPaths: []string{
				"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
			},
			ReadonlyPaths: []string{
				"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
			},
		},
	}
}
