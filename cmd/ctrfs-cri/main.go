// Command ctrfs-cri serves the Kubernetes Container Runtime Interface (CRI
// v1) on a unix socket, doing all its work through a mounted ctrfs tree.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/ctrfs/ctrfs/cri"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func main() {
	var cfg cri.Config
	socket := flag.String("listen", "/run/ctrfs-cri.sock", "unix socket to serve the CRI on")
	flag.StringVar(&cfg.Mount, "mount", "/mnt/ctr", "the ctrfs mount point")
	flag.StringVar(&cfg.StateDir, "state-dir", "/var/lib/ctrfs-cri", "the CRI server's own directory (pod files, log positions)")
	flag.StringVar(&cfg.PauseImage, "pause-image", "registry.k8s.io/pause:3.10", "the image of pod sandboxes")
	flag.StringVar(&cfg.CNIConfDir, "cni-conf-dir", "/etc/cni/net.d", "CNI network configs (NetworkReady when one is there)")
	flag.StringVar(&cfg.ImageDir, "image-dir", "/var/lib/ctrfs/images", "the daemon's image store (for ImageFsInfo)")
	debug := flag.Bool("debug", false, "log every request")
	flag.Parse()
	log := logrus.New()
	if *debug {
		log.SetLevel(logrus.DebugLevel)
	}
	cfg.Log = log
	if err := run(*socket, cfg, log); err != nil {
		fmt.Fprintln(os.Stderr, "ctrfs-cri:", err)
		os.Exit(1)
	}
}

func run(socket string, cfg cri.Config, log *logrus.Logger) error {
	srv, err := cri.New(cfg)
	if err != nil {
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
