package cri

import (
	"context"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// treeStats is the part of ID/stats the CRI reports.
type treeStats struct {
	Time string `json:"time"`
	CPU  struct {
		Usage struct {
			Total uint64 `json:"total"`
		} `json:"usage"`
	} `json:"cpu"`
	Memory struct {
		Usage uint64            `json:"usage"`
		Raw   map[string]uint64 `json:"raw"`
	} `json:"memory"`
	Pids struct {
		Current uint64 `json:"current"`
	} `json:"pids"`
}

func nowNano() int64 { return time.Now().UnixNano() }

// readStats reads ID/stats; ok false for a stopped container (empty file).
func (s *Server) readStats(id string) (treeStats, int64, bool) {
	var ts treeStats
	if err := s.t.ReadJSON(&ts, id, "stats"); err != nil {
		return ts, 0, false
	}
	at := parseTime(ts.Time)
	if at == 0 {
		at = nowNano()
	}
	return ts, at, true
}

// workingSet is usage less inactive file pages, as the kubelet counts it.
func (ts treeStats) workingSet() uint64 {
	inactive := ts.Memory.Raw["total_inactive_file"]
	if v, ok := ts.Memory.Raw["inactive_file"]; ok && inactive == 0 {
		inactive = v
	}
	if inactive > ts.Memory.Usage {
		return 0
	}
	return ts.Memory.Usage - inactive
}

func (s *Server) containerStats(c object) *runtimeapi.ContainerStats {
	out := &runtimeapi.ContainerStats{Attributes: &runtimeapi.ContainerAttributes{
		Id: c.ID, Metadata: c.containerMeta(), Labels: c.M.Labels, Annotations: c.M.Annotations,
	}}
	ts, at, ok := s.readStats(c.ID)
	if !ok {
		return out
	}
	out.Cpu = &runtimeapi.CpuUsage{Timestamp: at, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: ts.CPU.Usage.Total}}
	out.Memory = &runtimeapi.MemoryUsage{
		Timestamp: at, WorkingSetBytes: &runtimeapi.UInt64Value{Value: ts.workingSet()},
		UsageBytes: &runtimeapi.UInt64Value{Value: ts.Memory.Usage},
		RssBytes:   &runtimeapi.UInt64Value{Value: ts.Memory.Raw["total_rss"]},
	}
	out.WritableLayer = &runtimeapi.FilesystemUsage{Timestamp: at, FsId: &runtimeapi.FilesystemIdentifier{Mountpoint: s.cfg.ImageDir},
		UsedBytes: &runtimeapi.UInt64Value{}, InodesUsed: &runtimeapi.UInt64Value{}}
	return out
}

// ContainerStats answers from ID/stats.
func (s *Server) ContainerStats(ctx context.Context, req *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
	c, err := s.find("container", req.GetContainerId())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ContainerStatsResponse{Stats: s.containerStats(c)}, nil
}

// ListContainerStats answers from every container's stats.
func (s *Server) ListContainerStats(ctx context.Context, req *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	f := req.GetFilter()
	resp := &runtimeapi.ListContainerStatsResponse{}
	for _, c := range s.objects("container") {
		if f != nil && ((f.Id != "" && !strings.HasPrefix(c.ID, f.Id)) ||
			(f.PodSandboxId != "" && !strings.HasPrefix(c.M.Pod, f.PodSandboxId)) || !labelsMatch(f.LabelSelector, c.M.Labels)) {
			continue
		}
		resp.Stats = append(resp.Stats, s.containerStats(c))
	}
	return resp, nil
}

func (s *Server) podStats(sb object) *runtimeapi.PodSandboxStats {
	out := &runtimeapi.PodSandboxStats{
		Attributes: &runtimeapi.PodSandboxAttributes{Id: sb.ID, Metadata: sb.sandboxMeta(), Labels: sb.M.Labels, Annotations: sb.M.Annotations},
		Linux:      &runtimeapi.LinuxPodSandboxStats{},
	}
	var cpu, mem, ws, procs uint64
	at := nowNano()
	for _, id := range append([]string{sb.ID}, idsOf(s.podContainers(sb.ID))...) {
		if ts, _, ok := s.readStats(id); ok {
			cpu += ts.CPU.Usage.Total
			mem += ts.Memory.Usage
			ws += ts.workingSet()
			procs += ts.Pids.Current
		}
	}
	out.Linux.Cpu = &runtimeapi.CpuUsage{Timestamp: at, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: cpu}}
	out.Linux.Memory = &runtimeapi.MemoryUsage{Timestamp: at, WorkingSetBytes: &runtimeapi.UInt64Value{Value: ws}, UsageBytes: &runtimeapi.UInt64Value{Value: mem}}
	out.Linux.Process = &runtimeapi.ProcessUsage{Timestamp: at, ProcessCount: &runtimeapi.UInt64Value{Value: procs}}
	for _, c := range s.podContainers(sb.ID) {
		out.Linux.Containers = append(out.Linux.Containers, s.containerStats(c))
	}
	return out
}

func idsOf(objs []object) []string {
	ids := make([]string, len(objs))
	for i, o := range objs {
		ids[i] = o.ID
	}
	return ids
}

// PodSandboxStats sums the sandbox's and its containers' stats.
func (s *Server) PodSandboxStats(ctx context.Context, req *runtimeapi.PodSandboxStatsRequest) (*runtimeapi.PodSandboxStatsResponse, error) {
	sb, err := s.find("sandbox", req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PodSandboxStatsResponse{Stats: s.podStats(sb)}, nil
}

// ListPodSandboxStats is PodSandboxStats of every sandbox.
func (s *Server) ListPodSandboxStats(ctx context.Context, req *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	f := req.GetFilter()
	resp := &runtimeapi.ListPodSandboxStatsResponse{}
	for _, sb := range s.objects("sandbox") {
		if f != nil && ((f.Id != "" && !strings.HasPrefix(sb.ID, f.Id)) || !labelsMatch(f.LabelSelector, sb.M.Labels)) {
			continue
		}
		resp.Stats = append(resp.Stats, s.podStats(sb))
	}
	return resp, nil
}
