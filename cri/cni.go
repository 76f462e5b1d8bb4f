package cri

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Pod networking with CNI: the first network config of --cni-conf-dir (in
// name order, as the kubelet's runtimes take it), its plugins from
// --cni-bin-dir. A pod that does not share the host's network gets an ADD
// on its sandbox's namespace (/proc/PID/ns/net) when it starts, a DEL when
// it stops. What the ADD gave (the pod's IP) is kept in the pod's
// directory, pods/ID/network.json, until the DEL.

// errNoNetwork is the conf dir without a config: pods then get a network
// namespace with loopback only (NetworkReady is false, so a kubelet starts
// only host-network pods; crictl users get pods without a network).
var errNoNetwork = errors.New("no CNI network config")

// network is the loaded CNI config, or why there is none.
type network struct {
	cni  *libcni.CNIConfig
	list *libcni.NetworkConfigList
	err  error
}

// podNetwork is what the server keeps of a pod's ADD.
type podNetwork struct {
	NetNS string   `json:"netns"`
	IPs   []string `json:"ips,omitempty"`
}

// loadNetwork loads the first network config of the conf dir and checks
// that its plugins are there.
func (s *Server) loadNetwork() network {
	files, err := libcni.ConfFiles(s.cfg.CNIConfDir, []string{".conf", ".conflist", ".json"})
	if os.IsNotExist(err) {
		files, err = nil, nil
	}
	if err != nil {
		return network{err: err}
	}
	if len(files) == 0 {
		return network{err: fmt.Errorf("%w in %s", errNoNetwork, s.cfg.CNIConfDir)}
	}
	var list *libcni.NetworkConfigList
	if f := files[0]; strings.HasSuffix(f, ".conflist") {
		list, err = libcni.NetworkConfFromFile(f)
	} else {
		var conf *libcni.PluginConfig
		if conf, err = libcni.ConfFromFile(f); err == nil {
			list, err = libcni.ConfListFromConf(conf)
		}
	}
	if err != nil {
		return network{err: fmt.Errorf("%s: %w", files[0], err)}
	}
	bins := filepath.SplitList(s.cfg.CNIBinDir)
	for _, p := range list.Plugins {
		found := false
		for _, d := range bins {
			if fi, err := os.Stat(filepath.Join(d, p.Network.Type)); err == nil && fi.Mode().IsRegular() {
				found = true
				break
			}
		}
		if !found {
			return network{err: fmt.Errorf("%s: plugin %q not found in %s", files[0], p.Network.Type, s.cfg.CNIBinDir)}
		}
	}
	cache := filepath.Join(s.cfg.StateDir, "cni-cache")
	return network{cni: libcni.NewCNIConfigWithCacheDir(bins, cache, nil), list: list}
}

func (s *Server) netFile(id string) string { return filepath.Join(s.podDir(id), "network.json") }

// runtimeConf is the CNI call's description of the pod.
func runtimeConf(id, netns string, m meta, ports []*runtimeapi.PortMapping) *libcni.RuntimeConf {
	rc := &libcni.RuntimeConf{
		ContainerID: id, NetNS: netns, IfName: "eth0",
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", m.Namespace},
			{"K8S_POD_NAME", m.Name},
			{"K8S_POD_INFRA_CONTAINER_ID", id},
			{"K8S_POD_UID", m.UID},
		},
	}
	var pm []map[string]any
	for _, p := range ports {
		if p.HostPort <= 0 {
			continue
		}
		proto := strings.ToLower(p.Protocol.String())
		pm = append(pm, map[string]any{"hostPort": p.HostPort, "containerPort": p.ContainerPort, "protocol": proto, "hostIP": p.HostIp})
	}
	if len(pm) > 0 {
		rc.CapabilityArgs = map[string]any{"portMappings": pm}
	}
	return rc
}

// setUpNetwork runs the CNI ADD for the sandbox whose process is pid and
// records the result; on failure nothing is left set up.
func (s *Server) setUpNetwork(ctx context.Context, id string, pid int, m meta, ports []*runtimeapi.PortMapping) error {
	nw := s.loadNetwork()
	if errors.Is(nw.err, errNoNetwork) {
		s.log.WithField("id", id).Warn("no CNI network config: the pod has loopback only")
		return nil
	}
	if nw.err != nil {
		return nw.err
	}
	netns := fmt.Sprintf("/proc/%d/ns/net", pid)
	rc := runtimeConf(id, netns, m, ports)
	res, err := nw.cni.AddNetworkList(ctx, nw.list, rc)
	if err != nil {
		nw.cni.DelNetworkList(context.WithoutCancel(ctx), nw.list, rc)
		return fmt.Errorf("CNI ADD (%s): %w", nw.list.Name, err)
	}
	pn := podNetwork{NetNS: netns}
	if r, err := types100.NewResultFromResult(res); err == nil {
		for _, ip := range r.IPs {
			pn.IPs = append(pn.IPs, ip.Address.IP.String())
		}
	}
	b, _ := json.Marshal(pn)
	if err := os.WriteFile(s.netFile(id), b, 0o644); err != nil {
		nw.cni.DelNetworkList(context.WithoutCancel(ctx), nw.list, rc)
		return err
	}
	return nil
}

// tearDownNetwork runs the CNI DEL of a pod whose network was set up (the
// pod's network.json says so), while its namespace still exists when it
// can; a DEL done removes the record, so a second stop does nothing.
func (s *Server) tearDownNetwork(ctx context.Context, sb object, ports []*runtimeapi.PortMapping) error {
	b, err := os.ReadFile(s.netFile(sb.ID))
	if err != nil {
		return nil // never set up (host network, or no CNI), or torn down
	}
	var pn podNetwork
	json.Unmarshal(b, &pn)
	nw := s.loadNetwork()
	if nw.err != nil {
		return fmt.Errorf("CNI DEL: %w", nw.err)
	}
	netns := ""
	if sb.St.Pid > 0 && sb.St.State == "running" {
		netns = fmt.Sprintf("/proc/%d/ns/net", sb.St.Pid)
	}
	if err := nw.cni.DelNetworkList(ctx, nw.list, runtimeConf(sb.ID, netns, sb.M, ports)); err != nil {
		return fmt.Errorf("CNI DEL (%s): %w", nw.list.Name, err)
	}
	return os.Remove(s.netFile(sb.ID))
}

// podIPs are the pod's addresses, as its ADD gave them.
func (s *Server) podIPs(id string) []string {
	b, err := os.ReadFile(s.netFile(id))
	if err != nil {
		return nil
	}
	var pn podNetwork
	json.Unmarshal(b, &pn)
	return pn.IPs
}
