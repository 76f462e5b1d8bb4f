// Command ctrfs-cri serves the Kubernetes Container Runtime Interface (CRI
// v1) on a unix socket, doing all its work through a mounted ctrfs tree.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/ctrfs/ctrfs/cri"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"
)

func main() {
	var cfg cri.Config
	socket := flag.String("listen", "/run/ctrfs-cri.sock", "unix socket to serve the CRI on")
	flag.StringVar(&cfg.Mount, "mount", "/mnt/ctr", "the ctrfs mount point")
	flag.StringVar(&cfg.StateDir, "state-dir", "/var/lib/ctrfs-cri", "the CRI server's own directory (pod files, log positions)")
	flag.StringVar(&cfg.PauseImage, "pause-image", "registry.k8s.io/pause:3.10", "the image of pod sandboxes")
	flag.StringVar(&cfg.CNIConfDir, "cni-conf-dir", "/etc/cni/net.d", "CNI network configs: the first, in name order, is the pods' network")
	flag.StringVar(&cfg.CNIBinDir, "cni-bin-dir", "/usr/lib/cni:/opt/cni/bin", "where the CNI plugins are (a list, as PATH)")
	flag.StringVar(&cfg.ImageDir, "image-dir", "/var/lib/ctrfs/images", "the daemon's image store (for ImageFsInfo)")
	streamAddr := flag.String("streaming-addr", "127.0.0.1:0", "TCP address of the streaming server (Exec, Attach, PortForward); port 0 picks one")
	debug := flag.Bool("debug", false, "log every request")
	flag.Parse()
	log := logrus.New()
	if *debug {
		log.SetLevel(logrus.DebugLevel)
	}
	cfg.Log = log
	if err := run(*socket, *streamAddr, cfg, log); err != nil {
		fmt.Fprintln(os.Stderr, "ctrfs-cri:", err)
		os.Exit(1)
	}
}

func run(socket, streamAddr string, cfg cri.Config, log *logrus.Logger) error {
	srv, err := cri.New(cfg)
	if err != nil {
		return err
	}
	if err := serveStreaming(srv, streamAddr, log); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(socket), 0o755); err != nil {
		return err
	}
	os.Remove(socket)
	l, err := net.Listen("unix", socket)
	if err != nil {
		return err
	}
	if err := os.Chmod(socket, 0o600); err != nil {
		return err
	}
	g := grpc.NewServer(grpc.UnaryInterceptor(cri.LogInterceptor(log)))
	runtimeapi.RegisterRuntimeServiceServer(g, srv)
	runtimeapi.RegisterImageServiceServer(g, srv)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		g.Stop()
	}()
	log.WithField("socket", socket).Info("serving the CRI")
	err = g.Serve(l)
	os.Remove(socket)
	return err
}

// serveStreaming starts the kubelet's streaming server on addr, the URLs
// of Exec, Attach and PortForward answers pointing at it. The listener is
// made first, so that a port 0 is known before the URLs are.
func serveStreaming(srv *cri.Server, addr string, log *logrus.Logger) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("streaming server: %w", err)
	}
	cfg := streaming.DefaultConfig
	cfg.Addr = l.Addr().String()
	ss, err := streaming.NewServer(cfg, srv.Streamer())
	if err != nil {
		l.Close()
		return fmt.Errorf("streaming server: %w", err)
	}
	srv.SetStreaming(ss)
	go func() {
		err := http.Serve(l, ss)
		log.WithError(err).Error("streaming server stopped")
	}()
	log.WithField("addr", cfg.Addr).Info("serving the streams")
	return nil
}
