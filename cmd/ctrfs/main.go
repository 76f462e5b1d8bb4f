// Command ctrfs is the ctrfs daemon: it mounts the container tree and serves
// it until SIGINT or SIGTERM. Containers outlive it: their shims do not
// depend on the daemon.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"
	"github.com/ctrfs/ctrfs/fsys"
	"github.com/ctrfs/ctrfs/runtime"
	"github.com/sirupsen/logrus"
)

// version is ctrfs's version (set with -ldflags "-X main.version=...").
var version = "0.1.0"

const usage = `usage: ctrfs mount [--state-dir DIR] [--runtime runc] [--shim PATH] [--log-level L] [--log-max-size BYTES] MOUNTPOINT
       ctrfs version`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	switch os.Args[1] {
	case "mount":
		if err := mount(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "ctrfs:", err)
			os.Exit(1)
		}
	case "version", "--version":
		fmt.Println("ctrfs", version)
	default:
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
}

func mount(args []string) error {
	flags := flag.NewFlagSet("mount", flag.ContinueOnError)
	stateDir := flags.String("state-dir", "/run/ctrfs", "state directory")
	rtName := flags.String("runtime", "runc", "default OCI runtime (name in $PATH, or path)")
	shimPath := flags.String("shim", "", "ctrfs-shim binary (default: beside ctrfs)")
	logLevel := flags.String("log-level", "info", "log level: trace (every FUSE request), debug, info, warn, error")
	logMax := flags.Int64("log-max-size", runtime.DefaultLogMaxSize, "bound of each process output log, bytes")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() != 1 {
		return errors.New(usage)
	}
	mnt, err := filepath.Abs(flags.Arg(0))
	if err != nil {
		return err
	}
	log := logrus.New()
	log.SetOutput(os.Stderr)
	level, err := logrus.ParseLevel(*logLevel)
	if err != nil {
		return err
	}
	log.SetLevel(level)

	if err := checkPrerequisites(); err != nil {
		return err
	}
	if *shimPath == "" {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		*shimPath = filepath.Join(filepath.Dir(self), "ctrfs-shim")
	}
	if err := os.MkdirAll(*stateDir, 0o700); err != nil {
		return err
	}
	rt, err := runtime.New(runtime.Config{
		StateDir: *stateDir, Runtime: *rtName, ShimPath: *shimPath, LogMaxSize: *logMax, Log: log,
	})
	if err != nil {
		return err
	}
	if err := rt.Load(); err != nil {
		return fmt.Errorf("load state from %s: %w", *stateDir, err)
	}
	if err := prepareMountpoint(mnt); err != nil {
		return err
	}
	conn, err := fuse.Mount(mnt, fuse.FSName("ctrfs"), fuse.Subtype("ctrfs"), fuse.DefaultPermissions())
	if err != nil {
		return fmt.Errorf("mount %s: %w", mnt, err)
	}
	defer conn.Close()
	// bazil.org/fuse receives the /dev/fuse fd without close-on-exec: every
	// shim and runc the daemon starts would inherit it, and a shim holding
	// it keeps the mount alive (hung, not "not connected") after the daemon
	// dies. Mark it now, before anything is started.
	if err := closeOnExecFuseFds(); err != nil {
		return err
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		log.WithField("signal", sig).Info("unmounting; containers keep running")
		unmount(mnt, log)
	}()
	log.WithFields(logrus.Fields{"mountpoint": mnt, "state_dir": *stateDir, "runtime": rt.RuntimeVersion()}).Info("serving")
	var cfg fs.Config
	if log.IsLevelEnabled(logrus.TraceLevel) {
		// --log-level trace logs every FUSE request and response.
		cfg.Debug = func(msg any) { log.Trace(msg) }
	}
	srv := fs.New(conn, &cfg)
	if err := srv.Serve(fsys.New(rt, version)); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("unmounted")
	return nil
}

// closeOnExecFuseFds sets close-on-exec on every open /dev/fuse fd.
func closeOnExecFuseFds() error {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && target == "/dev/fuse" {
			syscall.CloseOnExec(fd)
		}
	}
	return nil
}

// checkPrerequisites names what to install when something is missing.
func checkPrerequisites() error {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return errors.New("/dev/fuse is missing: load the fuse module (modprobe fuse) or run where FUSE is available")
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		return errors.New("fusermount3 not found: install fuse3 (apt-get install -y fuse3)")
	}
	return nil
}

// prepareMountpoint makes the mountpoint, and cleans up one left behind by
// a daemon that died ("transport endpoint is not connected").
func prepareMountpoint(mnt string) error {
	_, err := os.Stat(mnt)
	if errors.Is(err, syscall.ENOTCONN) || errors.Is(err, syscall.ECONNABORTED) {
		if exec.Command("fusermount3", "-u", mnt).Run() != nil {
			if out, err := exec.Command("umount", "-l", mnt).CombinedOutput(); err != nil {
				return fmt.Errorf("cannot clean up the stale mount at %s: %v: %s", mnt, err, out)
			}
		}
		_, err = os.Stat(mnt)
	}
	if errors.Is(err, os.ErrNotExist) {
		return os.MkdirAll(mnt, 0o755)
	}
	return err
}

// unmount detaches the mount; a busy mount is detached lazily, so the
// daemon can always exit.
func unmount(mnt string, log logrus.FieldLogger) {
	if err := fuse.Unmount(mnt); err == nil {
		return
	}
	if out, err := exec.Command("fusermount3", "-u", "-z", mnt).CombinedOutput(); err != nil {
		log.WithError(err).WithField("output", string(out)).Warn("lazy unmount failed")
	}
}
