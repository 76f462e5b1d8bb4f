package cri

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// containerSpec is the OCI spec of a pod's container: the image's program
// as the CRI config amends it, in the sandbox's namespaces (by path).
func (s *Server) containerSpec(id string, sb object, ic imageConfig, cfg *runtimeapi.ContainerConfig) (*specs.Spec, error) {
	sp := baseSpec()
	args := append([]string(nil), ic.Config.Entrypoint...)
	if len(cfg.Command) > 0 {
		args = append([]string(nil), cfg.Command...)
	}
	if len(cfg.Args) > 0 {
		args = append(args, cfg.Args...)
	} else if len(cfg.Command) == 0 {
		args = append(args, ic.Config.Cmd...)
	}
	if len(args) == 0 {
		return nil, status.Error(codes.InvalidArgument, "no command: neither the config nor the image gives one")
	}
	sp.Process.Args = args
	var env []string
	for _, kv := range cfg.Envs {
		env = append(env, kv.Key+"="+string(kv.Value))
	}
	sp.Process.Env = mergeEnv(ic.Config.Env, env)
	sp.Process.Cwd = "/"
	if ic.Config.WorkingDir != "" {
		sp.Process.Cwd = ic.Config.WorkingDir
	}
	if cfg.WorkingDir != "" {
		sp.Process.Cwd = cfg.WorkingDir
	}
	sp.Process.Terminal = cfg.Tty
	lx := cfg.GetLinux()
	sc := lx.GetSecurityContext()
	// The uid and gid are ctrfs's to resolve (criUser, create --user).
	for _, g := range sc.GetSupplementalGroups() {
		sp.Process.User.AdditionalGids = append(sp.Process.User.AdditionalGids, uint32(g))
	}
	applySecurity(sp, securityContext{
		privileged: sc.GetPrivileged(), noNewPrivs: sc.GetNoNewPrivs(), readonlyRoot: sc.GetReadonlyRootfs(),
		addCaps: sc.GetCapabilities().GetAddCapabilities(), dropCaps: sc.GetCapabilities().GetDropCapabilities(),
		maskedPaths: sc.GetMaskedPaths(), readonlyPaths: sc.GetReadonlyPaths(),
	})
	if sc.GetMaskedPaths() != nil && len(sc.GetMaskedPaths()) == 0 {
		sp.Linux.MaskedPaths = nil
	}
	// The pod's namespaces, joined by path through the sandbox's init.
	pid := sb.St.Pid
	if pid == 0 {
		return nil, status.Errorf(codes.FailedPrecondition, "sandbox %s is not running", sb.ID)
	}
	sp.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.MountNamespace}}
	if runtimeapi.NamespaceMode(sb.M.NetNS) != runtimeapi.NamespaceMode_NODE {
		sp.Linux.Namespaces = append(sp.Linux.Namespaces,
			specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: nsPath(pid, "net")},
			specs.LinuxNamespace{Type: specs.UTSNamespace, Path: nsPath(pid, "uts")})
	}
	if runtimeapi.NamespaceMode(sb.M.IpcNS) != runtimeapi.NamespaceMode_NODE {
		sp.Linux.Namespaces = append(sp.Linux.Namespaces, specs.LinuxNamespace{Type: specs.IPCNamespace, Path: nsPath(pid, "ipc")})
	}
	switch sc.GetNamespaceOptions().GetPid() {
	case runtimeapi.NamespaceMode_NODE:
	case runtimeapi.NamespaceMode_POD:
		sp.Linux.Namespaces = append(sp.Linux.Namespaces, specs.LinuxNamespace{Type: specs.PIDNamespace, Path: nsPath(pid, "pid")})
	case runtimeapi.NamespaceMode_TARGET:
		t, err := s.find("container", sc.GetNamespaceOptions().GetTargetId())
		if err != nil || t.St.Pid == 0 {
			return nil, status.Errorf(codes.NotFound, "target container %q of the pid namespace is not running", sc.GetNamespaceOptions().GetTargetId())
		}
		sp.Linux.Namespaces = append(sp.Linux.Namespaces, specs.LinuxNamespace{Type: specs.PIDNamespace, Path: nsPath(t.St.Pid, "pid")})
	default:
		sp.Linux.Namespaces = append(sp.Linux.Namespaces, specs.LinuxNamespace{Type: specs.PIDNamespace})
	}
	// The pod's files first, so the CRI's own mounts of the same paths win.
	dir := s.podDir(sb.ID)
	for _, f := range []string{"hostname", "hosts", "resolv.conf"} {
		sp.Mounts = append(sp.Mounts, specs.Mount{Destination: "/etc/" + f, Type: "bind", Source: filepath.Join(dir, f), Options: []string{"rbind", "rprivate", "rw"}})
	}
	if err := applyMounts(sp, cfg.Mounts); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if err := applyDevices(sp, cfg.Devices); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	applyResources(sp, lx.GetResources())
	sp.Linux.Sysctl = nil
	if p := lx.GetResources(); p != nil && p.Unified != nil {
		sp.Linux.Resources.Unified = p.Unified
	}
	if parent := s.sandboxCgroupParent(sb); parent != "" {
		sp.Linux.CgroupsPath = filepath.Join(parent, id)
	}
	sp.Annotations = map[string]string{
		"io.kubernetes.cri.container-type": "container",
		"io.kubernetes.cri.sandbox-id":     sb.ID,
	}
	for k, v := range cfg.Annotations {
		sp.Annotations[k] = v
	}
	return sp, nil
}

// sandboxCgroupParent is the cgroup parent the sandbox was given (the
// directory of its cgroupsPath), read back from its config.json.
func (s *Server) sandboxCgroupParent(sb object) string {
	var sp specs.Spec
	if err := s.t.ReadJSON(&sp, sb.ID, "config.json"); err != nil || sp.Linux == nil || sp.Linux.CgroupsPath == "" {
		return ""
	}
	return filepath.Dir(sp.Linux.CgroupsPath)
}

// CreateContainer makes the container (ctrfs `create`), not yet started.
func (s *Server) CreateContainer(ctx context.Context, req *runtimeapi.CreateContainerRequest) (*runtimeapi.CreateContainerResponse, error) {
	cfg := req.GetConfig()
	md := cfg.GetMetadata()
	if md == nil || md.Name == "" {
		return nil, status.Error(codes.InvalidArgument, "container metadata with a name is required")
	}
	if err := s.validateContainer(cfg); err != nil {
		return nil, err
	}
	sb, err := s.find("sandbox", req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	ref := cfg.GetImage().GetImage()
	digest := s.resolveImage(ref)
	if digest == "" {
		return nil, status.Errorf(codes.NotFound, "image %q: not present (pull it first)", ref)
	}
	var ic imageConfig
	if err := s.t.ReadJSON(&ic, "images", digest, "config.json"); err != nil {
		return nil, treeStatus("image config", err)
	}
	id := newID()
	sp, err := s.containerSpec(id, sb, ic, cfg)
	if err != nil {
		return nil, err
	}
	csc := cfg.GetLinux().GetSecurityContext()
	if err := applySeccomp(sp, csc.GetPrivileged(), csc.GetSeccomp(), csc.GetSeccompProfilePath()); err != nil {
		return nil, err
	}
	extra, mounts, err := s.imageMountArgs(cfg.Mounts)
	if err != nil {
		return nil, err
	}
	m := meta{
		Kind: "container", Pod: sb.ID, Name: md.Name, Attempt: md.Attempt,
		Labels: cfg.Labels, Annotations: cfg.Annotations, CreatedAt: time.Now().UnixNano(),
		Image: ref, ImageRef: digest, Mounts: mounts, StopSig: ic.Config.StopSignal,
		Stdin: cfg.Stdin, StdinOnce: cfg.StdinOnce, Tty: cfg.Tty,
	}
	if sb.M.LogDir != "" && cfg.LogPath != "" {
		m.LogPath = filepath.Join(sb.M.LogDir, cfg.LogPath)
		if err := os.MkdirAll(filepath.Dir(m.LogPath), 0o755); err != nil {
			return nil, status.Errorf(codes.Internal, "log directory: %v", err)
		}
	}
	if cfg.Stdin {
		extra = append(extra, "--stdin")
	}
	if cfg.Tty {
		extra = append(extra, "--tty")
	}
	if u := criUser(ic.Config.User, cfg.GetLinux().GetSecurityContext()); u != "" {
		extra = append(extra, "--user", u)
		if cfg.GetLinux().GetSecurityContext().GetSupplementalGroupsPolicy() == runtimeapi.SupplementalGroupsPolicy_Strict {
			// Strict: the pod's groups and the primary gid, none of the
			// image's /etc/group.
			extra = append(extra, "--user-groups", "none")
		}
	}
	if m.LogPath != "" {
		// init's shim writes the CRI-format log itself.
		extra = append(extra, "--log-path", m.LogPath)
	}
	if err := s.createCtrfs(ctx, "create", id, digest, sp, m, extra...); err != nil {
		return nil, treeStatus("create container", err)
	}
	return &runtimeapi.CreateContainerResponse{ContainerId: id}, nil
}

// StartContainer starts a created container.
func (s *Server) StartContainer(ctx context.Context, req *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
	c, err := s.find("container", req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if err := s.t.Ctl("start", c.ID, "ctl"); err != nil {
		return nil, treeStatus("start", err)
	}
	return &runtimeapi.StartContainerResponse{}, nil
}

// StopContainer sends the stop signal, then KILL after the timeout.
func (s *Server) StopContainer(ctx context.Context, req *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
	c, ok, err := s.findIfAny("container", req.GetContainerId())
	if !ok {
		return &runtimeapi.StopContainerResponse{}, err
	}
	if err := s.stopCtrfs(c.ID, c.M.StopSig, time.Duration(req.GetTimeout())*time.Second); err != nil {
		return nil, treeStatus("stop", err)
	}
	return &runtimeapi.StopContainerResponse{}, nil
}

// RemoveContainer removes a container in any state; an unknown one is fine.
func (s *Server) RemoveContainer(ctx context.Context, req *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error) {
	c, ok, err := s.findIfAny("container", req.GetContainerId())
	if !ok {
		return &runtimeapi.RemoveContainerResponse{}, err
	}
	if err := s.deleteCtrfs(c.ID); err != nil {
		return nil, treeStatus("remove", err)
	}
	return &runtimeapi.RemoveContainerResponse{}, nil
}

func containerState(st *Status) runtimeapi.ContainerState {
	switch st.State {
	case "created":
		return runtimeapi.ContainerState_CONTAINER_CREATED
	case "running", "paused":
		return runtimeapi.ContainerState_CONTAINER_RUNNING
	case "stopped":
		return runtimeapi.ContainerState_CONTAINER_EXITED
	}
	return runtimeapi.ContainerState_CONTAINER_UNKNOWN
}

func (o object) containerMeta() *runtimeapi.ContainerMetadata {
	return &runtimeapi.ContainerMetadata{Name: o.M.Name, Attempt: o.M.Attempt}
}

// ListContainers lists the containers, filtered.
func (s *Server) ListContainers(ctx context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	f := req.GetFilter()
	resp := &runtimeapi.ListContainersResponse{}
	for _, c := range s.objects("container") {
		if f != nil {
			if f.Id != "" && !strings.HasPrefix(c.ID, f.Id) {
				continue
			}
			if f.PodSandboxId != "" && !strings.HasPrefix(c.M.Pod, f.PodSandboxId) {
				continue
			}
			if f.State != nil && f.State.State != containerState(c.St) {
				continue
			}
			if !labelsMatch(f.LabelSelector, c.M.Labels) {
				continue
			}
		}
		resp.Containers = append(resp.Containers, &runtimeapi.Container{
			Id: c.ID, PodSandboxId: c.M.Pod, Metadata: c.containerMeta(),
			Image: &runtimeapi.ImageSpec{Image: c.M.Image}, ImageRef: c.M.ImageRef, ImageId: c.M.ImageRef,
			State: containerState(c.St), CreatedAt: c.M.CreatedAt, Labels: c.M.Labels, Annotations: c.M.Annotations,
		})
	}
	return resp, nil
}

// containerStatus is the CRI status of a container object.
func (c object) containerStatus() *runtimeapi.ContainerStatus {
	st := &runtimeapi.ContainerStatus{
		Id: c.ID, Metadata: c.containerMeta(), State: containerState(c.St),
		CreatedAt: c.M.CreatedAt, StartedAt: parseTime(c.St.Started), FinishedAt: parseTime(c.St.Exited),
		Image: &runtimeapi.ImageSpec{Image: c.M.Image}, ImageRef: c.M.ImageRef, ImageId: c.M.ImageRef,
		Labels: c.M.Labels, Annotations: c.M.Annotations, Mounts: c.M.Mounts, LogPath: c.M.LogPath,
		User: &runtimeapi.ContainerUser{Linux: &runtimeapi.LinuxContainerUser{}},
	}
	if st.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
		// Only while it runs is the pid the container's (an exited
		// one's may be any process's by now).
		st.User = processUser(c.St.Pid)
	}
	if c.St.State == "stopped" {
		switch {
		case c.St.ExitStatus == nil:
			st.ExitCode, st.Reason = 255, "Unknown"
		case *c.St.ExitStatus == 0:
			st.ExitCode, st.Reason = 0, "Completed"
		default:
			st.ExitCode, st.Reason = int32(*c.St.ExitStatus), "Error"
		}
		st.Message = c.St.ExitReason
	}
	if len(c.St.Resources) > 0 {
		var r specs.LinuxResources
		if json.Unmarshal(c.St.Resources, &r) == nil {
			st.Resources = &runtimeapi.ContainerResources{Linux: criResources(&r)}
		}
	}
	return st
}

// criResources is the CRI view of OCI LinuxResources.
func criResources(r *specs.LinuxResources) *runtimeapi.LinuxContainerResources {
	out := &runtimeapi.LinuxContainerResources{}
	if c := r.CPU; c != nil {
		if c.Shares != nil {
			out.CpuShares = int64(*c.Shares)
		}
		if c.Quota != nil {
			out.CpuQuota = *c.Quota
		}
		if c.Period != nil {
			out.CpuPeriod = int64(*c.Period)
		}
		out.CpusetCpus, out.CpusetMems = c.Cpus, c.Mems
	}
	if m := r.Memory; m != nil && m.Limit != nil {
		out.MemoryLimitInBytes = *m.Limit
		if m.Swap != nil {
			out.MemorySwapLimitInBytes = *m.Swap
		}
	}
	return out
}

// ContainerStatus: after RemoveContainer it is NotFound.
func (s *Server) ContainerStatus(ctx context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	c, err := s.find("container", req.GetContainerId())
	if err != nil {
		return nil, err
	}
	st := c.containerStatus()
	if st.State == runtimeapi.ContainerState_CONTAINER_EXITED && st.ExitCode != 0 {
		if b, err := s.t.Read(c.ID, "oom"); err == nil {
			if n, _ := strconv.Atoi(strings.TrimSpace(string(b))); n > 0 {
				st.Reason = "OOMKilled"
			}
		}
	}
	resp := &runtimeapi.ContainerStatusResponse{Status: st}
	if req.GetVerbose() {
		resp.Info = map[string]string{"pid": strconv.Itoa(c.St.Pid), "tree": s.t.path(c.ID), "sandbox": c.M.Pod}
	}
	return resp, nil
}

// UpdateContainerResources is `update {JSON}` on the container's ctl.
func (s *Server) UpdateContainerResources(ctx context.Context, req *runtimeapi.UpdateContainerResourcesRequest) (*runtimeapi.UpdateContainerResourcesResponse, error) {
	c, err := s.find("container", req.GetContainerId())
	if err != nil {
		return nil, err
	}
	raw, err := resourcesJSON(req.GetLinux())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if string(raw) == "{}" {
		return &runtimeapi.UpdateContainerResourcesResponse{}, nil
	}
	if err := s.t.Ctl("update "+string(raw), c.ID, "ctl"); err != nil {
		return nil, treeStatus("update", err)
	}
	return &runtimeapi.UpdateContainerResourcesResponse{}, nil
}

// ReopenContainerLog reopens the log file at its path (after the kubelet
// rotated it).
func (s *Server) ReopenContainerLog(ctx context.Context, req *runtimeapi.ReopenContainerLogRequest) (*runtimeapi.ReopenContainerLogResponse, error) {
	c, err := s.find("container", req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if c.St.State != "running" {
		return nil, status.Errorf(codes.FailedPrecondition, "container %s is %s, not running", c.ID, c.St.State)
	}
	if c.M.LogPath == "" {
		return nil, status.Errorf(codes.FailedPrecondition, "container %s has no log path", c.ID)
	}
	if err := s.t.Ctl("reopen-log", c.ID, "processes", "init", "ctl"); err != nil {
		return nil, treeStatus("reopen log", err)
	}
	return &runtimeapi.ReopenContainerLogResponse{}, nil
}
