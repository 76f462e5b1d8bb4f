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
	"time"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"
	"github.com/ctrfs/ctrfs/fsys"
	ctrruntime "github.com/ctrfs/ctrfs/runtime" // not Go's runtime (poker.go uses that one)
	"github.com/sirupsen/logrus"
)

// version is ctrfs's version (set with -ldflags "-X main.version=...").
var version = "0.1.0"

const usage = `usage: ctrfs mount [--state-dir DIR] [--runtime runc] [--shim PATH] [--log-level L] [--log-max-size BYTES] [--event-buffer N]
                   [--allow-other [--group NAME] [--read-group NAME]]
                   [--image-dir DIR] [--registry-auth FILE] [--insecure-registry HOST]...
                   [--registry-mirror HOST=URL]... [--max-layer-size BYTES] [--max-image-size BYTES] MOUNTPOINT
       ctrfs version`

func main() {
	survivePipe()
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
	case "poke": // the daemon's own helper (see poker.go)
		if len(os.Args) != 3 {
			os.Exit(2)
		}
		os.Exit(pokeMain(os.Args[2]))
	case "serving": // the readiness check (see notify.go)
		os.Exit(servingMain(os.Args[2:]))
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
	logMax := flags.Int64("log-max-size", ctrruntime.DefaultLogMaxSize, "bound of each process output log, bytes")
	eventBuffer := flags.Int("event-buffer", ctrruntime.DefaultSubscriberBuffer, "events kept for readers of events files, in one ring for all (a reader further behind gets an overflow event)")
	share := addShareFlags(flags)
	imageDir := flags.String("image-dir", ctrruntime.DefaultImageDir, "image store directory (\"\" for none)")
	imageOpts := imageFlags(flags)
	if err := flags.Parse(args); err != nil {
		return err
	}
	access, mountOpts, err := share.resolve()
	if err != nil {
		return err
	}
	if flags.NArg() != 1 {
		return errors.New(usage)
	}
	mnt, err := filepath.Abs(flags.Arg(0))
	if err != nil {
		return err
	}
	tuneGC()
	log := logrus.New()
	log.SetOutput(os.Stderr)
	level, err := logrus.ParseLevel(*logLevel)
	if err != nil {
		return err
	}
	log.SetLevel(level)
	logFileLimit(log)

	if err := checkPrerequisites(); err != nil {
		return err
	}
	// Nothing the daemon inherited goes on to the shims and containers it
	// starts: a parent waiting for EOF on a pipe would wait for as long as
	// any container lives.
	if err := closeOnExecFds(func(string) bool { return true }); err != nil {
		return err
	}
	if *stateDir, err = filepath.Abs(*stateDir); err != nil {
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
	rt, err := ctrruntime.New(ctrruntime.Config{
		StateDir: *stateDir, Runtime: *rtName, ShimPath: *shimPath, LogMaxSize: *logMax, EventBuffer: *eventBuffer, Log: log,
		ImageDir: *imageDir, Images: *imageOpts,
	})
	if err != nil {
		return err
	}
	if err := tightenStateDir(*stateDir, log); err != nil {
		return err
	}
	if err := rt.Load(); err != nil {
		return fmt.Errorf("load state from %s: %w", *stateDir, err)
	}
	// Keep no directory busy (nor the mount, were it started from inside);
	// every path is absolute by now.
	if err := os.Chdir("/"); err != nil {
		return err
	}
	if err := prepareMountpoint(mnt); err != nil {
		return err
	}
	conn, err := fuse.Mount(mnt, append([]fuse.MountOption{fuse.FSName("ctrfs"), fuse.Subtype("ctrfs")}, mountOpts...)...)
	if err != nil {
		return fmt.Errorf("mount %s: %w", mnt, err)
	}
	defer conn.Close()
	// bazil.org/fuse receives the /dev/fuse fd without close-on-exec: every
	// shim and runc the daemon starts would inherit it, and a shim holding
	// it keeps the mount alive (hung, not "not connected") after the daemon
	// dies. Mark it now, before anything is started.
	if err := closeOnExecFds(func(target string) bool { return target == "/dev/fuse" }); err != nil {
		return err
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		notifyStopping(log)
		log.WithField("signal", sig).Info("unmounting; containers keep running")
		if unmount(mnt, log) {
			return // Serve returns, and the daemon exits
		}
		// The mount was busy and is detached lazily: the kernel keeps the
		// connection while something still uses it. Exiting closes it.
		select {
		case sig = <-sigs:
			log.WithField("signal", sig).Info("second signal: exiting now")
		case <-time.After(busyExitGrace):
			log.Info("mount still in use; exiting anyway")
		}
		os.Exit(0)
	}()
	log.WithFields(logrus.Fields{"mountpoint": mnt, "state_dir": *stateDir, "runtime": rt.RuntimeVersion()}).Info("serving")
	var cfg fs.Config
	if log.IsLevelEnabled(logrus.TraceLevel) {
		// --log-level trace logs every FUSE request and response.
		cfg.Debug = func(msg any) { log.Trace(msg) }
	}
	poker, err := newPoker(mnt, log)
	if err != nil {
		return err
	}
	tree := fsys.New(rt, version)
	tree.SetAccess(access)
	go notifyReady(mnt, log) // systemd's READY=1 once the mount answers
	if err := tree.Serve(conn, mnt, &cfg, poker); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("unmounted")
	return nil
}

// closeOnExecFds sets close-on-exec on every open fd above stderr whose
// target (the /proc/self/fd link) pick says yes to.
func closeOnExecFds(pick func(target string) bool) error {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 {
			continue
		}
		// An fd closed since the listing (the listing's own) has no link.
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && pick(target) {
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

// busyExitGrace is how long a daemon whose mount is busy keeps serving
// after SIGINT/SIGTERM before it exits.
const busyExitGrace = 2 * time.Second

// unmount detaches the mount and reports whether that ended it; a busy mount
// is detached lazily, and lives on while it is in use.
func unmount(mnt string, log logrus.FieldLogger) bool {
	if err := fuse.Unmount(mnt); err == nil {
		return true
	}
	if out, err := exec.Command("fusermount3", "-u", "-z", mnt).CombinedOutput(); err != nil {
		log.WithError(err).WithField("output", string(out)).Warn("lazy unmount failed")
	}
	return false
}

// tightenStateDir makes an existing state directory 0700: it holds every
// container's specs, logs and control fifos, which are root's alone.
func tightenStateDir(dir string, log *logrus.Logger) error {
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if st.Mode().Perm() == 0o700 {
		return nil
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("state dir %s: %w", dir, err)
	}
	log.WithFields(logrus.Fields{"state_dir": dir, "was": fmt.Sprintf("%04o", st.Mode().Perm())}).Warn("state directory was open to others: made 0700")
	return nil
}

// survivePipe keeps the daemon alive when its log's reader goes away (a
// `| tee` interrupted): Go kills a program on EPIPE of stdout or stderr
// unless SIGPIPE is notified; then the write fails, and the log line is
// lost, not the mount. Notify, not Ignore: an ignored SIGPIPE would be
// inherited by the shims and the containers' processes.
func survivePipe() {
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
}
