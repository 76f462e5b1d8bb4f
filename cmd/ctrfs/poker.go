package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime" // Go's; ctrfs's is imported as ctrruntime
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// poker is the daemon's fsys.Poker: a child process, `ctrfs poke
// MOUNTPOINT`, that writes the inotify pokes through the mount. It is a
// process apart because a thread of the daemon blocked in a write to its
// own mount cannot be killed: were the daemon killed (-9) while a poke is
// in flight, the kernel would wait for the daemon's own answer and the
// daemon would hang, unkillable, with its mount. The child's write ends
// instead when the dead daemon's FUSE connection is torn down, and the
// child exits at the EOF of its stdin. It is started at the first poke and
// again if it dies.
type poker struct {
	self, mnt string
	log       logrus.FieldLogger

	mu  sync.Mutex
	in  *os.File // the child's stdin: one path a line
	tid atomic.Int32
}

// pokerStartTimeout bounds the wait for a new poker's first line.
const pokerStartTimeout = 10 * time.Second

func newPoker(mnt string, log logrus.FieldLogger) (*poker, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return &poker{self: self, mnt: mnt, log: log}, nil
}

func (p *poker) Poke(rels []string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.in == nil {
		if err := p.start(); err != nil {
			p.log.WithError(err).Warn("inotify poker")
			return err
		}
	}
	if _, err := p.in.Write([]byte(strings.Join(rels, "\n") + "\n")); err != nil {
		p.log.WithError(err).Warn("inotify poker gone; starting a new one at the next change")
		p.in.Close()
		p.in = nil
		p.tid.Store(0)
		return err
	}
	return nil
}

func (p *poker) IsPoker(tid uint32) bool {
	t := p.tid.Load()
	return t != 0 && uint32(t) == tid
}

// start execs the child and reads the thread id it writes from.
func (p *poker) start() error {
	cmd := exec.Command(p.self, "poke", p.mnt)
	cmd.Dir = "/"
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s poke: %w", p.self, err)
	}
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(out).ReadString('\n')
		line <- l
	}()
	var tid int
	select {
	case l := <-line:
		tid, err = strconv.Atoi(strings.TrimSpace(l))
	case <-time.After(pokerStartTimeout):
		err = errors.New("no answer")
	}
	if err != nil || tid <= 0 {
		cmd.Process.Kill()
		in.Close()
		cmd.Wait()
		return fmt.Errorf("poker did not tell its thread: %v", err)
	}
	p.in = in.(*os.File)
	p.tid.Store(int32(tid))
	// Once the poker is gone its thread id may name another thread, whose
	// writes must not be taken for pokes.
	go func() {
		cmd.Wait()
		p.tid.CompareAndSwap(int32(tid), 0)
	}()
	return nil
}

// pokeMain is `ctrfs poke MOUNTPOINT`: it writes one byte to each file
// named on stdin (a path under the mountpoint a line), from one thread,
// whose id it writes first on stdout, and exits at EOF.
func pokeMain(mnt string) int {
	runtime.LockOSThread() // every write comes from this thread
	fmt.Printf("%d\n", unix.Gettid())
	one := []byte{'\n'}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		rel := sc.Text()
		// Only paths under the mount: ".." is refused as a path element,
		// not within a name ("db..1" is a valid id).
		if rel == "" || filepath.IsAbs(rel) || slices.Contains(strings.Split(rel, "/"), "..") {
			continue
		}
		// Raw syscalls: an os.File would register the fd with the
		// runtime's poller, a needless POLL round trip.
		fd, err := unix.Open(filepath.Join(mnt, rel), unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			continue // gone meanwhile, or unmounted
		}
		unix.Write(fd, one)
		unix.Close(fd)
	}
	return 0
}
