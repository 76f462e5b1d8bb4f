// Package runtime supervises containers: it creates them through one shim
// per process, keeps their state in memory and in the state directory,
// watches the shims, and runs the OCI runtime for orders. It knows nothing
// of FUSE.
package runtime

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ctrfs/ctrfs/images"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// DefaultLogMaxSize bounds each output log of a process.
const DefaultLogMaxSize = 8 << 20

// MinLogMaxSize is the smallest bound taken: a log is trimmed in whole
// 4 KiB blocks, so a smaller one would keep next to nothing.
const MinLogMaxSize = 64 << 10

// createTimeout bounds a create: starting the shim and the runtime's create.
const createTimeout = 2 * time.Minute

// Config configures a Runtime.
type Config struct {
	// StateDir is the state directory (default /run/ctrfs).
	StateDir string
	// Runtime is the default OCI runtime, a name looked up in $PATH or a path.
	Runtime string
	// ShimPath is the ctrfs-shim binary.
	ShimPath string
	// LogMaxSize bounds each of a process's stdout and stderr logs.
	LogMaxSize int64
	// EventBuffer is how many unread events a subscriber may hold before
	// it is told it overflowed (default DefaultSubscriberBuffer).
	EventBuffer int
	// ImageDir is the image store's directory; "" for no image store.
	ImageDir string
	// Images are the store's options: registry credentials, insecure
	// registries, mirrors, limits.
	Images images.Options
	Log    logrus.FieldLogger
}

// Runtime is the set of containers.
type Runtime struct {
	cfg         Config
	runtimeRoot string
	version     string
	mon         *monitor
	events      *bus
	statLRU     *statLRU
	inotify     *inotify // the logs being read; memory.events on cgroup v2
	logs        *logWatch
	shims       *shimLauncher
	lock        *os.File    // flock on <state>/lock: one daemon per state dir
	images      *ImageStore // nil without Config.ImageDir
	imageLock   *os.File    // flock on <images>/lock
	log         logrus.FieldLogger
	times       runtimeTimes // when the mount last changed (times.go)

	// mu guards the fields below it. It is a leaf: nothing else is locked
	// while it is held. It is taken under a container's ops (create,
	// delete) and under the event bus's lock (the filesystem's observer
	// looks containers up), so never publish while holding it.
	mu         sync.RWMutex
	containers map[string]*Container
	pending    map[string]bool // ids whose create is under way
}

// New prepares the state directory and checks the runtime and the shim.
func New(cfg Config) (*Runtime, error) {
	if cfg.Log == nil {
		cfg.Log = logrus.StandardLogger()
	}
	if cfg.LogMaxSize <= 0 {
		cfg.LogMaxSize = DefaultLogMaxSize
	}
	if cfg.LogMaxSize < MinLogMaxSize {
		return nil, fmt.Errorf("--log-max-size %d: at least %d bytes", cfg.LogMaxSize, MinLogMaxSize)
	}
	if cfg.Runtime == "" {
		cfg.Runtime = "runc"
	}
	if cfg.EventBuffer <= 0 {
		cfg.EventBuffer = DefaultSubscriberBuffer
	}
	path, err := exec.LookPath(cfg.Runtime)
	if err != nil {
		return nil, fmt.Errorf("OCI runtime %q not found (install it: apt-get install -y runc)", cfg.Runtime)
	}
	if _, err := os.Stat(cfg.ShimPath); err != nil {
		return nil, fmt.Errorf("shim not found: %w (build it: make build)", err)
	}
	// Every path handed to a shim or the runtime must be absolute: they do
	// not run in the daemon's working directory.
	if cfg.StateDir, err = filepath.Abs(cfg.StateDir); err != nil {
		return nil, err
	}
	if cfg.ShimPath, err = filepath.Abs(cfg.ShimPath); err != nil {
		return nil, err
	}
	if strings.ContainsRune(cfg.Runtime, '/') {
		if cfg.Runtime, err = filepath.Abs(cfg.Runtime); err != nil {
			return nil, err
		}
	}
	root := filepath.Join(cfg.StateDir, runtimeRootDir)
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, err
	}
	lock, err := lockStateDir(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	mon, err := newMonitor(cfg.Log)
	if err != nil {
		return nil, err
	}
	in, err := newInotify(cfg.Log)
	if err != nil {
		return nil, err
	}
	r := &Runtime{
		cfg: cfg, runtimeRoot: root, mon: mon, events: newBus(cfg.EventBuffer), inotify: in, logs: newLogWatch(in), log: cfg.Log, lock: lock,
		statLRU:    &statLRU{max: maxKeptStatFiles},
		shims:      &shimLauncher{path: cfg.ShimPath, mon: mon},
		containers: map[string]*Container{}, pending: map[string]bool{},
		times: runtimeTimes{started: time.Now().UTC()},
	}
	r.version = runtimeVersion(path)
	if cfg.ImageDir != "" {
		if r.images, err = openImages(r, cfg); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// lockStateDir takes an exclusive flock on <state>/lock, so that two daemons
// never act on one state directory (the second would undo the first one's
// creates in progress, and both would record every exit). The lock file
// names the holder's pid. The fd is close-on-exec: no shim holds the lock.
func lockStateDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := flockOrWait(f); err != nil {
		holder, _ := os.ReadFile(f.Name()) // only for the message
		f.Close()
		if err == unix.EWOULDBLOCK {
			return nil, fmt.Errorf("state directory %s is in use by another ctrfs (pid %s)", dir, strings.TrimSpace(string(holder)))
		}
		return nil, fmt.Errorf("lock state directory %s: %w", dir, err)
	}
	// The pid only words a second daemon's refusal: failing to write it
	// costs that word, not the lock, so the daemon goes on.
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(fmt.Sprintf("%d\n", os.Getpid())), 0)
	return f, nil
}

// lockGrace bounds how long a daemon waits for the lock of a holder that is
// dead already.
const lockGrace = 5 * time.Second

// flockOrWait takes the lock at once, or, while the daemon that wrote its
// pid into the file is gone, waits a moment for it: a child that daemon
// was forking when it was killed shares the lock until its exec closes it
// (close-on-exec), which a loaded machine can take a while to get to. A
// live holder is refused at once.
func flockOrWait(f *os.File) error {
	deadline := time.Now().Add(lockGrace)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err != unix.EWOULDBLOCK || time.Now().After(deadline) || holderAlive(f) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// holderAlive says whether the pid written in the lock file is a live
// process (or cannot be read: then it counts as alive).
func holderAlive(f *os.File) bool {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil || pid <= 0 {
		return true
	}
	return unix.Kill(pid, 0) != unix.ESRCH
}

// runtimeVersion asks the runtime its version, once, at start.
func runtimeVersion(path string) string {
	out, err := exec.Command(path, "--version").Output()
	name := filepath.Base(path)
	if err != nil {
		return name + " unknown"
	}
	first, _, _ := strings.Cut(string(out), "\n")
	if v, ok := strings.CutPrefix(first, name+" version "); ok {
		return name + " " + strings.TrimSpace(v)
	}
	return strings.TrimSpace(first)
}

// RuntimeVersion is "NAME VERSION" of the default runtime.
func (r *Runtime) RuntimeVersion() string { return r.version }

// Get returns the container with this id.
func (r *Runtime) Get(id string) (*Container, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c, ok := r.containers[id]
	return c, ok
}

// List returns every container, sorted by id.
func (r *Runtime) List() []*Container {
	r.mu.RLock()
	out := make([]*Container, 0, len(r.containers))
	for _, c := range r.containers {
		out = append(out, c)
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}
