// Package cri is a CRI v1 server (k8s.io/cri-api) that does all its work
// through a mounted ctrfs tree: it reads files and writes ctl lines, as any
// other client of the tree does, and imports none of the daemon's packages.
//
// A pod sandbox is a small ctrfs container (the pause image) holding the
// pod's network, IPC and UTS namespaces; the pod's containers are ctrfs
// containers made with `create ID --image REF --config PATH`, whose spec
// joins those namespaces by path (/proc/PID/ns/...). What the CRI must
// remember about each (its metadata, labels, annotations, log path) is a
// label of the ctrfs container itself (metaLabel), so the tree alone is the
// state: it survives restarts of this server and of the daemon, and goes
// with the container. The server's own directory holds only what the pods'
// containers bind-mount (resolv.conf, hostname, hosts) and the log copiers'
// positions.
package cri

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"
)

// Label keys the CRI server puts on the ctrfs containers it makes.
const (
	kindLabel = "io.ctrfs.cri.kind" // "sandbox" or "container"
	podLabel  = "io.ctrfs.cri.pod"  // a container's sandbox id
	metaLabel = "io.ctrfs.cri.meta" // the CRI's metadata, one line of JSON
)

// Config is the server's configuration.
type Config struct {
	Mount      string // the ctrfs mount, e.g. /mnt/ctr
	StateDir   string // the server's own directory, e.g. /var/lib/ctrfs-cri
	PauseImage string // the sandboxes' image
	CNIConfDir string // where CNI network configs are
	CNIBinDir  string // where CNI plugins are (a PATH-like list)
	ImageDir   string // the daemon's image store directory (ImageFsInfo)
	Log        *logrus.Logger
}

// Server serves the CRI RuntimeService and ImageService.
type Server struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	runtimeapi.UnimplementedImageServiceServer
	cfg Config
	t   Tree
	log *logrus.Logger
	// stream is the streaming server of Exec, Attach and PortForward
	// (streaming.go); nil: they are Unimplemented.
	stream streaming.Server
}

// New makes a server. A restart needs nothing resumed: the containers' logs
// are written by their shims (create --log-path).
func New(cfg Config) (*Server, error) {
	if cfg.Log == nil {
		cfg.Log = logrus.StandardLogger()
	}
	for _, d := range []string{"pods", "tmp"} {
		if err := os.MkdirAll(filepath.Join(cfg.StateDir, d), 0o700); err != nil {
			return nil, err
		}
	}
	s := &Server{cfg: cfg, t: Tree{Root: cfg.Mount}, log: cfg.Log}
	if _, err := s.t.Read("version"); err != nil {
		return nil, fmt.Errorf("%s is not a ctrfs mount: %w", cfg.Mount, err)
	}
	return s, nil
}

// meta is what the CRI remembers of a sandbox or a container, kept as the
// metaLabel of its ctrfs container.
type meta struct {
	Kind        string            `json:"kind"`
	Pod         string            `json:"pod,omitempty"`
	Name        string            `json:"name"`
	UID         string            `json:"uid,omitempty"`
	Namespace   string            `json:"namespace,omitempty"`
	Attempt     uint32            `json:"attempt"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	CreatedAt   int64             `json:"created_at"`
	// Containers.
	Image    string              `json:"image,omitempty"`     // as asked
	ImageRef string              `json:"image_ref,omitempty"` // the digest
	LogPath  string              `json:"log_path,omitempty"`  // absolute
	Mounts   []*runtimeapi.Mount `json:"mounts,omitempty"`
	StopSig  string              `json:"stop_signal,omitempty"`
	// Stdin, StdinOnce and Tty are the container's config's: Attach's.
	Stdin     bool `json:"stdin,omitempty"`
	StdinOnce bool `json:"stdin_once,omitempty"`
	Tty       bool `json:"tty,omitempty"`
	// Sandboxes.
	Hostname       string                    `json:"hostname,omitempty"`
	LogDir         string                    `json:"log_dir,omitempty"`
	RuntimeHandler string                    `json:"runtime_handler,omitempty"`
	NetNS          int32                     `json:"net_ns,omitempty"` // runtimeapi.NamespaceMode
	PidNS          int32                     `json:"pid_ns,omitempty"`
	IpcNS          int32                     `json:"ipc_ns,omitempty"`
	Ports          []*runtimeapi.PortMapping `json:"ports,omitempty"`
}

// object is a CRI sandbox or container found in the tree.
type object struct {
	ID string
	M  meta
	St *Status
}

// objects reads every CRI object of the tree of kind ("" for both).
func (s *Server) objects(kind string) []object {
	ids, err := s.t.Containers()
	if err != nil {
		s.log.WithError(err).Warn("cannot list the tree")
		return nil
	}
	var out []object
	for _, id := range ids {
		o, err := s.object(id)
		if err != nil || (kind != "" && o.M.Kind != kind) {
			continue
		}
		out = append(out, o)
	}
	return out
}

// object reads the CRI object id; a gRPC NotFound when there is none.
func (s *Server) object(id string) (object, error) {
	st, err := s.t.Status(id)
	if err != nil {
		return object{}, status.Errorf(codes.NotFound, "%q: no such sandbox or container", id)
	}
	raw, ok := st.Labels[metaLabel]
	if !ok {
		return object{}, status.Errorf(codes.NotFound, "%q: not a CRI sandbox or container", id)
	}
	o := object{ID: id, St: st}
	if err := json.Unmarshal([]byte(raw), &o.M); err != nil {
		return object{}, status.Errorf(codes.Internal, "%q: bad CRI metadata: %v", id, err)
	}
	return o, nil
}

// find resolves a full id or a unique prefix of one to an object of kind.
func (s *Server) find(kind, id string) (object, error) {
	if id == "" {
		return object{}, status.Errorf(codes.InvalidArgument, "no %s id given", kind)
	}
	if o, err := s.object(id); err == nil {
		if o.M.Kind != kind {
			return object{}, status.Errorf(codes.NotFound, "%q is not a %s", id, kind)
		}
		return o, nil
	}
	var found []object
	for _, o := range s.objects(kind) {
		if strings.HasPrefix(o.ID, id) {
			found = append(found, o)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return object{}, status.Errorf(codes.NotFound, "%s %q not found", kind, id)
	}
	return object{}, status.Errorf(codes.InvalidArgument, "%s id %q is ambiguous", kind, id)
}

// findIfAny is find for the calls where an object that is not there is
// done already (stop and remove): ok false and no error then.
func (s *Server) findIfAny(kind, id string) (o object, ok bool, err error) {
	o, err = s.find(kind, id)
	if status.Code(err) == codes.NotFound {
		return o, false, nil
	}
	return o, err == nil, err
}

// newID is a fresh id: 64 hex digits, as containerd's.
func newID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// treeStatus turns an error of the tree into a gRPC status.
func treeStatus(verb string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.Unknown
	switch {
	case isErrno(err, syscall.ENOENT):
		code = codes.NotFound
	case isErrno(err, syscall.EINVAL):
		code = codes.InvalidArgument
	case isErrno(err, syscall.EEXIST):
		code = codes.AlreadyExists
	case isErrno(err, syscall.EBUSY):
		code = codes.FailedPrecondition
	case isErrno(err, syscall.EFBIG):
		code = codes.ResourceExhausted
	}
	return status.Errorf(code, "%s: %v", verb, err)
}

// writeTemp writes data to a fresh file of the server's tmp directory and
// returns its path; the caller removes it.
func (s *Server) writeTemp(data []byte) (string, error) {
	f, err := os.CreateTemp(filepath.Join(s.cfg.StateDir, "tmp"), "config-*.json")
	if err != nil {
		return "", err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), f.Close()
}

// createCtrfs makes the ctrfs container id from the image digest with the
// given spec, labelled with m: `create ID --image DIGEST --config PATH`.
func (s *Server) createCtrfs(ctx context.Context, verb, id, digest string, spec any, m meta, extra ...string) error {
	raw, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	mraw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	path, err := s.writeTemp(raw)
	if err != nil {
		return err
	}
	defer os.Remove(path)
	words := []string{id, "--image", digest, "--config", path,
		"--label", kindLabel + "=" + m.Kind, "--label", metaLabel + "=" + string(mraw)}
	if m.Pod != "" {
		words = append(words, "--label", podLabel+"="+m.Pod)
	}
	words = append(words, extra...)
	return s.t.Ctl(ctlLine(verb, words...), "ctl")
}

// waitStopped waits until the container's state reads stopped, or d passes.
func (s *Server) waitStopped(id string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		b, err := s.t.Read(id, "state")
		if err != nil || strings.TrimSpace(string(b)) == "stopped" {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stopCtrfs stops a container: sig, then after timeout KILL to every
// process. A container already stopped, or gone, is fine.
func (s *Server) stopCtrfs(id, sig string, timeout time.Duration) error {
	st, err := s.t.Status(id)
	if err != nil || st.State == "stopped" {
		return nil
	}
	if st.State == "created" || st.State == "paused" {
		timeout = 0 // a created init never runs a handler; a paused one cannot
	}
	if timeout > 0 {
		if sig == "" {
			sig = "TERM"
		}
		if err := s.t.Ctl(ctlLine("kill", sig), id, "ctl"); err == nil && s.waitStopped(id, timeout) {
			return nil
		}
	}
	if err := s.t.Ctl("kill KILL --all", id, "ctl"); err != nil && !isErrno(err, syscall.EBUSY) && !isErrno(err, syscall.ENOENT) {
		return err
	}
	if !s.waitStopped(id, 30*time.Second) {
		return fmt.Errorf("container %s did not stop after KILL", id)
	}
	return nil
}

// deleteCtrfs removes a container whatever its state; gone already is fine.
func (s *Server) deleteCtrfs(id string) error {
	err := s.t.Ctl(ctlLine("delete", id, "--force"), "ctl")
	if err != nil && isErrno(err, syscall.ENOENT) {
		return nil
	}
	return err
}

// parseTime reads an RFC 3339 time of a status as Unix nanoseconds (0 for none).
func parseTime(s string) int64 {
	if s == "" {
		return 0
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0
	}
	return t.UnixNano()
}

// Version answers the CRI's Version.
func (s *Server) Version(ctx context.Context, req *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	v := "unknown"
	if b, err := s.t.Read("version"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		if f := strings.Fields(line); len(f) == 2 {
			v = f[1]
		}
	}
	return &runtimeapi.VersionResponse{Version: "0.1.0", RuntimeName: "ctrfs", RuntimeVersion: v, RuntimeApiVersion: "v1"}, nil
}

// Status: the runtime is ready when the mount answers; the network when a
// CNI network config loads and its plugins are there.
func (s *Server) Status(ctx context.Context, req *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	rt := &runtimeapi.RuntimeCondition{Type: runtimeapi.RuntimeReady, Status: true}
	if _, err := s.t.Read("version"); err != nil {
		rt.Status, rt.Reason, rt.Message = false, "CtrfsMountUnreachable", err.Error()
	}
	nw := &runtimeapi.RuntimeCondition{Type: runtimeapi.NetworkReady, Status: true}
	if err := s.loadNetwork().err; err != nil {
		nw.Status, nw.Reason, nw.Message = false, "NetworkPluginNotReady", err.Error()
	}
	return &runtimeapi.StatusResponse{Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{rt, nw}},
		RuntimeHandlers: s.runtimeHandlers(), Features: runtimeFeatures()}, nil
}

// RuntimeConfig: cgroups are managed by path (cgroupfs), as runc does
// without its systemd driver.
func (s *Server) RuntimeConfig(ctx context.Context, req *runtimeapi.RuntimeConfigRequest) (*runtimeapi.RuntimeConfigResponse, error) {
	return &runtimeapi.RuntimeConfigResponse{Linux: &runtimeapi.LinuxRuntimeConfiguration{CgroupDriver: runtimeapi.CgroupDriver_CGROUPFS}}, nil
}

// UpdateRuntimeConfig takes the pod CIDR, which matters only to CNI.
func (s *Server) UpdateRuntimeConfig(ctx context.Context, req *runtimeapi.UpdateRuntimeConfigRequest) (*runtimeapi.UpdateRuntimeConfigResponse, error) {
	return &runtimeapi.UpdateRuntimeConfigResponse{}, nil
}

// LogInterceptor logs each request at debug level, and failures at info.
func LogInterceptor(log *logrus.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		resp, err := h(ctx, req)
		e := log.WithField("method", info.FullMethod)
		if err != nil {
			e.WithError(err).Info("request failed")
		} else {
			e.Debug("request")
		}
		return resp, err
	}
}
