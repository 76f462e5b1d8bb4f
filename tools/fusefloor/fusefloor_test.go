// Package fusefloor measures the floor under a ctrfs read: the same small
// file (c/state, "running\n") served by a minimal bazil.org/fuse server
// (ctrfs's library) and by a minimal github.com/hanwen/go-fuse/v2 server,
// each in a process of its own, and read (open, read, close) by the
// benchmark's process, against a tmpfs file. Each server is in two modes:
//
//   - direct: what ctrfs serves for a file that changes (state): direct I/O,
//     attributes never cached, the directory entries cached for a minute;
//   - cached: what ctrfs serves for a file that never changes (constFile):
//     entries and attributes cached for a minute, page cache kept.
//
// Beside the time, server-ctxsw/op counts the server's context switches per
// read: how often serving put one of its threads to sleep, a figure a
// loaded machine changes less than the time. It is its own module so that
// ctrfs does not depend on go-fuse. Run with `make bench-fuse` (root and
// /dev/fuse needed).
package fusefloor

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	bfuse "bazil.org/fuse"
	bfs "bazil.org/fuse/fs"
	gfs "github.com/hanwen/go-fuse/v2/fs"
	gfuse "github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

var content = []byte("running\n")

const minute = time.Minute

// ---- bazil.org/fuse -------------------------------------------------------

type bazilFS struct{ cached bool }

func (f bazilFS) Root() (bfs.Node, error) { return bazilDir{f.cached, 1}, nil }

type bazilDir struct {
	cached bool
	inode  uint64
}

func (d bazilDir) Attr(_ context.Context, a *bfuse.Attr) error {
	a.Inode, a.Mode = d.inode, os.ModeDir|0o555
	a.Valid = minute
	return nil
}

func (d bazilDir) Lookup(_ context.Context, req *bfuse.LookupRequest, resp *bfuse.LookupResponse) (bfs.Node, error) {
	resp.EntryValid = minute
	switch {
	case d.inode == 1 && req.Name == "c":
		return bazilDir{d.cached, 2}, nil
	case d.inode == 2 && req.Name == "state":
		return bazilFile{d.cached}, nil
	}
	return nil, syscall.ENOENT
}

type bazilFile struct{ cached bool }

func (f bazilFile) Attr(_ context.Context, a *bfuse.Attr) error {
	a.Inode, a.Mode, a.Size = 3, 0o444, uint64(len(content))
	a.Valid = 0 // bazil's default is a minute
	if f.cached {
		a.Valid = minute
	}
	return nil
}

func (f bazilFile) Open(_ context.Context, _ *bfuse.OpenRequest, resp *bfuse.OpenResponse) (bfs.Handle, error) {
	if f.cached {
		resp.Flags |= bfuse.OpenKeepCache
	} else {
		resp.Flags |= bfuse.OpenDirectIO
	}
	return f, nil
}

func (f bazilFile) Read(_ context.Context, req *bfuse.ReadRequest, resp *bfuse.ReadResponse) error {
	if req.Offset < int64(len(content)) {
		end := min(int(req.Offset)+req.Size, len(content))
		resp.Data = content[req.Offset:end]
	}
	return nil
}

// serveBazil mounts dir and serves it until it is unmounted.
func serveBazil(dir string, cached bool) error {
	c, err := bfuse.Mount(dir, bfuse.FSName("fusefloor"))
	if err != nil {
		return err
	}
	defer c.Close()
	ready <- struct{}{}
	return bfs.Serve(c, bazilFS{cached})
}

// ---- github.com/hanwen/go-fuse/v2 -----------------------------------------

type goFuseFile struct {
	gfs.Inode
	cached bool
}

var _ = (gfs.NodeOpener)((*goFuseFile)(nil))
var _ = (gfs.NodeReader)((*goFuseFile)(nil))
var _ = (gfs.NodeGetattrer)((*goFuseFile)(nil))

func (f *goFuseFile) Getattr(_ context.Context, _ gfs.FileHandle, out *gfuse.AttrOut) syscall.Errno {
	out.Mode, out.Size = 0o444, uint64(len(content))
	if f.cached {
		out.SetTimeout(minute)
	} else {
		out.SetTimeout(0)
	}
	return 0
}

func (f *goFuseFile) Open(context.Context, uint32) (gfs.FileHandle, uint32, syscall.Errno) {
	if f.cached {
		return nil, gfuse.FOPEN_KEEP_CACHE, 0
	}
	return nil, gfuse.FOPEN_DIRECT_IO, 0
}

func (f *goFuseFile) Read(_ context.Context, _ gfs.FileHandle, dest []byte, off int64) (gfuse.ReadResult, syscall.Errno) {
	if off >= int64(len(content)) {
		return gfuse.ReadResultData(nil), 0
	}
	return gfuse.ReadResultData(content[off:]), 0
}

type goFuseRoot struct {
	gfs.Inode
	cached bool
}

func (r *goFuseRoot) OnAdd(ctx context.Context) {
	c := r.NewPersistentInode(ctx, &gfs.Inode{}, gfs.StableAttr{Mode: syscall.S_IFDIR})
	r.AddChild("c", c, false)
	f := r.NewPersistentInode(ctx, &goFuseFile{cached: r.cached}, gfs.StableAttr{Mode: syscall.S_IFREG})
	c.AddChild("state", f, false)
}

// serveGoFuse mounts dir and serves it until it is unmounted.
func serveGoFuse(dir string, cached bool) error {
	entry, attr := minute, time.Duration(0)
	if cached {
		attr = minute
	}
	srv, err := gfs.Mount(dir, &goFuseRoot{cached: cached}, &gfs.Options{
		EntryTimeout: &entry, AttrTimeout: &attr,
		MountOptions: gfuse.MountOptions{FsName: "fusefloor"},
	})
	if err != nil {
		return err
	}
	ready <- struct{}{}
	srv.Wait()
	return nil
}

// ready says the server's mount is up.
var ready = make(chan struct{}, 1)

// TestMain is also the server: a client reads from another process, as
// every ctrfs client does. FUSEFLOOR_SERVE=LIB:MODE:DIR serves DIR and
// prints "ready" once mounted.
func TestMain(m *testing.M) {
	spec := os.Getenv("FUSEFLOOR_SERVE")
	if spec == "" {
		os.Exit(m.Run())
	}
	parts := strings.SplitN(spec, ":", 3)
	go func() { <-ready; os.Stdout.WriteString("ready\n") }()
	serve := serveBazil
	if parts[0] == "gofuse" {
		serve = serveGoFuse
	}
	if err := serve(parts[2], parts[1] == "cached"); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	os.Exit(0)
}

// mount starts a server process of lib in mode on a new directory.
func mount(tb testing.TB, lib, mode string) (string, int) {
	dir := tb.TempDir()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "FUSEFLOOR_SERVE="+lib+":"+mode+":"+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		tb.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "ready\n" {
		cmd.Wait()
		tb.Skipf("%s server did not mount (root and /dev/fuse needed)", lib)
	}
	tb.Cleanup(func() {
		unix.Unmount(dir, unix.MNT_DETACH)
		cmd.Wait()
	})
	return dir, cmd.Process.Pid
}

// ---- the benchmark ----------------------------------------------------------

// readOnce is what a client does for one read of a small file.
func readOnce(b *testing.B, path string, buf []byte) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	n, err := unix.Read(fd, buf)
	unix.Close(fd)
	if err != nil || !bytes.Equal(buf[:n], content) {
		b.Fatalf("read %s: %q, %v", path, buf[:n], err)
	}
}

func BenchmarkRead(b *testing.B) {
	tmp, err := os.MkdirTemp("/dev/shm", "fusefloor-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(tmp) })
	if err := os.WriteFile(filepath.Join(tmp, "state"), content, 0o444); err != nil {
		b.Fatal(err)
	}
	cases := []struct{ name, lib, mode string }{
		{"tmpfs", "", ""},
		{"bazil-direct", "bazil", "direct"},
		{"gofuse-direct", "gofuse", "direct"},
		{"bazil-cached", "bazil", "cached"},
		{"gofuse-cached", "gofuse", "cached"},
	}
	for _, c := range cases {
		path, pid := filepath.Join(tmp, "state"), os.Getpid()
		if c.lib != "" {
			var dir string
			dir, pid = mount(b, c.lib, c.mode)
			path = filepath.Join(dir, "c", "state")
		}
		b.Run(c.name, func(b *testing.B) {
			buf := make([]byte, 4096)
			readOnce(b, path, buf) // warm the entries
			b.ResetTimer()
			cs := contextSwitches(pid)
			for i := 0; i < b.N; i++ {
				readOnce(b, path, buf)
			}
			b.ReportMetric(float64(contextSwitches(pid)-cs)/float64(b.N), "server-ctxsw/op")
		})
	}
}

// BenchmarkStat is one FUSE round trip: a stat of the direct file, whose
// entries are cached and attributes are not (a GETATTR each time).
func BenchmarkStat(b *testing.B) {
	for _, lib := range []string{"bazil", "gofuse"} {
		dir, pid := mount(b, lib, "direct")
		path := filepath.Join(dir, "c", "state")
		b.Run(lib, func(b *testing.B) {
			var st unix.Stat_t
			cs := contextSwitches(pid)
			for i := 0; i < b.N; i++ {
				if err := unix.Stat(path, &st); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(contextSwitches(pid)-cs)/float64(b.N), "server-ctxsw/op")
		})
	}
}

// contextSwitches is the sum of every thread's voluntary and involuntary
// context switches in process pid: how many times serving a request put
// one of the server's threads to sleep, whatever the machine's load.
func contextSwitches(pid int) int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	total := 0
	for _, t := range tasks {
		f, err := os.Open(t)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if ok && strings.HasSuffix(k, "ctxt_switches") {
				n, _ := strconv.Atoi(strings.TrimSpace(v))
				total += n
			}
		}
		f.Close()
	}
	return total
}
