package cri

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// podDir is the sandbox's directory of files its containers bind-mount.
func (s *Server) podDir(id string) string { return filepath.Join(s.cfg.StateDir, "pods", id) }

// ensureImage is the digest of ref, pulled first if the store lacks it.
func (s *Server) ensureImage(ctx context.Context, ref string) (string, error) {
	if d := s.resolveImage(ref); d != "" {
		return d, nil
	}
	r, err := s.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	if err != nil {
		return "", err
	}
	return r.ImageRef, nil
}

// writePodFiles writes the pod's hostname, hosts and resolv.conf.
func writePodFiles(dir, hostname string, hostNet bool, dns *runtimeapi.DNSConfig) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if hostNet || hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return err
		}
		if hostname == "" || hostNet {
			hostname = h
		}
	}
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	if hostNet {
		if b, err := os.ReadFile("/etc/hosts"); err == nil {
			hosts = string(b)
		}
	}
	resolv, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		resolv = nil
	}
	if dns != nil && (len(dns.Servers) > 0 || len(dns.Searches) > 0 || len(dns.Options) > 0) {
		var b strings.Builder
		if len(dns.Searches) > 0 {
			fmt.Fprintf(&b, "search %s\n", strings.Join(dns.Searches, " "))
		}
		for _, ns := range dns.Servers {
			fmt.Fprintf(&b, "nameserver %s\n", ns)
		}
		if len(dns.Options) > 0 {
			fmt.Fprintf(&b, "options %s\n", strings.Join(dns.Options, " "))
		}
		resolv = []byte(b.String())
	}
	for name, data := range map[string][]byte{"hostname": []byte(hostname + "\n"), "hosts": []byte(hosts), "resolv.conf": resolv} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// sandboxSpec is the OCI spec of a sandbox: the pause image's program in the
// pod's own namespaces (those the pod does not take from the host).
func sandboxSpec(id string, ic imageConfig, cfg *runtimeapi.PodSandboxConfig) *specs.Spec {
	sp := baseSpec()
	sp.Process.Args = append(append([]string(nil), ic.Config.Entrypoint...), ic.Config.Cmd...)
	if len(sp.Process.Args) == 0 {
		sp.Process.Args = []string{"/pause"}
	}
	sp.Process.Env = mergeEnv(ic.Config.Env, nil)
	if ic.Config.WorkingDir != "" {
		sp.Process.Cwd = ic.Config.WorkingDir
	}
	uid, gid, _ := numericUser(ic.Config.User)
	sp.Process.User = specs.User{UID: uid, GID: gid}
	lx := cfg.GetLinux()
	nso := lx.GetSecurityContext().GetNamespaceOptions()
	sp.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.MountNamespace}}
	if nso.GetNetwork() != runtimeapi.NamespaceMode_NODE {
		sp.Linux.Namespaces = append(sp.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace}, specs.LinuxNamespace{Type: specs.UTSNamespace})
		sp.Hostname = cfg.GetHostname()
	}
	if nso.GetIpc() != runtimeapi.NamespaceMode_NODE {
		sp.Linux.Namespaces = append(sp.Linux.Namespaces, specs.LinuxNamespace{Type: specs.IPCNamespace})
	}
	if nso.GetPid() != runtimeapi.NamespaceMode_NODE {
		sp.Linux.Namespaces = append(sp.Linux.Namespaces, specs.LinuxNamespace{Type: specs.PIDNamespace})
	}
	sc := lx.GetSecurityContext()
	if u := sc.GetRunAsUser(); u != nil {
		sp.Process.User.UID = uint32(u.Value)
	}
	if g := sc.GetRunAsGroup(); g != nil {
		sp.Process.User.GID = uint32(g.Value)
	}
	for _, g := range sc.GetSupplementalGroups() {
		sp.Process.User.AdditionalGids = append(sp.Process.User.AdditionalGids, uint32(g))
	}
	applySecurity(sp, securityContext{privileged: sc.GetPrivileged(), readonlyRoot: sc.GetReadonlyRootfs()})
	sp.Linux.Sysctl = lx.GetSysctls()
	if p := lx.GetCgroupParent(); p != "" {
		sp.Linux.CgroupsPath = filepath.Join(p, id)
	}
	if r := lx.GetResources(); r != nil {
		applyResources(sp, r)
	}
	// Never a negative score for the sandbox (containerd asks -998): this
	// host refuses it.
	sp.Process.OOMScoreAdj = nil
	sp.Annotations = map[string]string{
		"io.kubernetes.cri.container-type": "sandbox",
		"io.kubernetes.cri.sandbox-id":     id,
	}
	return sp
}

// RunPodSandbox makes and starts the pod's sandbox container.
func (s *Server) RunPodSandbox(ctx context.Context, req *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error) {
	cfg := req.GetConfig()
	md := cfg.GetMetadata()
	if md == nil || md.Name == "" {
		return nil, status.Error(codes.InvalidArgument, "sandbox metadata with a name is required")
	}
	digest, err := s.ensureImage(ctx, s.cfg.PauseImage)
	if err != nil {
		return nil, err
	}
	var ic imageConfig
	if err := s.t.ReadJSON(&ic, "images", digest, "config.json"); err != nil {
		return nil, treeStatus("pause image config", err)
	}
	id := newID()
	nso := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	hostNet := nso.GetNetwork() == runtimeapi.NamespaceMode_NODE
	if err := writePodFiles(s.podDir(id), cfg.GetHostname(), hostNet, cfg.GetDnsConfig()); err != nil {
		os.RemoveAll(s.podDir(id))
		return nil, status.Errorf(codes.Internal, "pod files: %v", err)
	}
	m := meta{
		Kind: "sandbox", Name: md.Name, UID: md.Uid, Namespace: md.Namespace, Attempt: md.Attempt,
		Labels: cfg.GetLabels(), Annotations: cfg.GetAnnotations(), CreatedAt: time.Now().UnixNano(),
		Hostname: cfg.GetHostname(), LogDir: cfg.GetLogDirectory(), RuntimeHandler: req.GetRuntimeHandler(),
		NetNS: int32(nso.GetNetwork()), PidNS: int32(nso.GetPid()), IpcNS: int32(nso.GetIpc()),
		Ports: cfg.GetPortMappings(),
	}
	if cfg.GetLogDirectory() != "" {
		if err := os.MkdirAll(cfg.GetLogDirectory(), 0o755); err != nil {
			os.RemoveAll(s.podDir(id))
			return nil, status.Errorf(codes.Internal, "log directory: %v", err)
		}
	}
	if err := s.createCtrfs(ctx, "run", id, digest, sandboxSpec(id, ic, cfg), m); err != nil {
		os.RemoveAll(s.podDir(id))
		return nil, treeStatus("run sandbox", err)
	}
	if !hostNet {
		sb, err := s.object(id)
		if err == nil {
			err = s.setUpNetwork(ctx, id, sb.St.Pid, m, m.Ports)
		}
		if err != nil {
			// No pod without its network: nothing is left of it.
			s.deleteCtrfs(id)
			os.RemoveAll(s.podDir(id))
			return nil, status.Errorf(codes.Unavailable, "pod network: %v", err)
		}
	}
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: id}, nil
}

// podContainers are the containers of the sandbox id.
func (s *Server) podContainers(id string) []object {
	var out []object
	for _, o := range s.objects("container") {
		if o.M.Pod == id {
			out = append(out, o)
		}
	}
	return out
}

// StopPodSandbox kills the pod's containers and its sandbox. A stopped or
// unknown sandbox is fine.
func (s *Server) StopPodSandbox(ctx context.Context, req *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	sb, ok, err := s.findIfAny("sandbox", req.GetPodSandboxId())
	if !ok {
		return &runtimeapi.StopPodSandboxResponse{}, err
	}
	if err := s.downPod(ctx, sb, "stop", func(id string) error { return s.stopCtrfs(id, "", 0) }); err != nil {
		return nil, err
	}
	return &runtimeapi.StopPodSandboxResponse{}, nil
}

// downPod is what stopping and removing a pod share: act on each of its
// containers, the CNI DEL while the sandbox's namespace is still there,
// then act on the sandbox.
func (s *Server) downPod(ctx context.Context, sb object, verb string, act func(id string) error) error {
	for _, c := range s.podContainers(sb.ID) {
		if err := act(c.ID); err != nil {
			return treeStatus(verb+" container "+c.ID, err)
		}
	}
	if err := s.tearDownNetwork(ctx, sb, sb.M.Ports); err != nil {
		return status.Errorf(codes.Unavailable, "pod network: %v", err)
	}
	if err := act(sb.ID); err != nil {
		return treeStatus(verb+" sandbox", err)
	}
	return nil
}

// RemovePodSandbox removes the pod's containers, its sandbox and its files.
func (s *Server) RemovePodSandbox(ctx context.Context, req *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	sb, ok, err := s.findIfAny("sandbox", req.GetPodSandboxId())
	if !ok {
		return &runtimeapi.RemovePodSandboxResponse{}, err
	}
	if err := s.downPod(ctx, sb, "remove", s.deleteCtrfs); err != nil {
		return nil, err
	}
	os.RemoveAll(s.podDir(sb.ID))
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}

func sandboxState(st *Status) runtimeapi.PodSandboxState {
	if st.State == "running" || st.State == "paused" {
		return runtimeapi.PodSandboxState_SANDBOX_READY
	}
	return runtimeapi.PodSandboxState_SANDBOX_NOTREADY
}

func (o object) sandboxMeta() *runtimeapi.PodSandboxMetadata {
	return &runtimeapi.PodSandboxMetadata{Name: o.M.Name, Uid: o.M.UID, Namespace: o.M.Namespace, Attempt: o.M.Attempt}
}

// PodSandboxStatus answers from the sandbox container's status.
func (s *Server) PodSandboxStatus(ctx context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	sb, err := s.find("sandbox", req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	st := &runtimeapi.PodSandboxStatus{
		Id: sb.ID, Metadata: sb.sandboxMeta(), State: sandboxState(sb.St), CreatedAt: sb.M.CreatedAt,
		Network: &runtimeapi.PodSandboxNetworkStatus{},
		Linux: &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{Options: &runtimeapi.NamespaceOption{
			Network: runtimeapi.NamespaceMode(sb.M.NetNS), Pid: runtimeapi.NamespaceMode(sb.M.PidNS), Ipc: runtimeapi.NamespaceMode(sb.M.IpcNS),
		}}},
		Labels: sb.M.Labels, Annotations: sb.M.Annotations, RuntimeHandler: sb.M.RuntimeHandler,
	}
	if ips := s.podIPs(sb.ID); len(ips) > 0 {
		st.Network.Ip = ips[0]
		for _, ip := range ips[1:] {
			st.Network.AdditionalIps = append(st.Network.AdditionalIps, &runtimeapi.PodIP{Ip: ip})
		}
	}
	resp := &runtimeapi.PodSandboxStatusResponse{Status: st}
	if req.GetVerbose() {
		resp.Info = map[string]string{"pid": fmt.Sprint(sb.St.Pid), "tree": s.t.path(sb.ID)}
	}
	for _, c := range s.podContainers(sb.ID) {
		resp.ContainersStatuses = append(resp.ContainersStatuses, c.containerStatus())
	}
	return resp, nil
}

// labelsMatch tells whether every selector pair is in labels.
func labelsMatch(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// ListPodSandbox lists the sandboxes, filtered.
func (s *Server) ListPodSandbox(ctx context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	f := req.GetFilter()
	resp := &runtimeapi.ListPodSandboxResponse{}
	for _, sb := range s.objects("sandbox") {
		if f != nil {
			if f.Id != "" && !strings.HasPrefix(sb.ID, f.Id) {
				continue
			}
			if f.State != nil && f.State.State != sandboxState(sb.St) {
				continue
			}
			if !labelsMatch(f.LabelSelector, sb.M.Labels) {
				continue
			}
		}
		resp.Items = append(resp.Items, &runtimeapi.PodSandbox{
			Id: sb.ID, Metadata: sb.sandboxMeta(), State: sandboxState(sb.St), CreatedAt: sb.M.CreatedAt,
			Labels: sb.M.Labels, Annotations: sb.M.Annotations, RuntimeHandler: sb.M.RuntimeHandler,
		})
	}
	return resp, nil
}
