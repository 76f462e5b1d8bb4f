// Package fsys serves the ctrfs tree over FUSE: every container a
// directory, reads answered from runtime's memory, orders written to ctl
// files. It runs nothing itself; orders go to package runtime.
package fsys

import (
	"context"
	"sort"
	"sync"
	"syscall"
	"time"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"
	"github.com/ctrfs/ctrfs/runtime"
)

// FS is the ctrfs filesystem.
type FS struct {
	rt      Runtime
	n       *notifier
	root    *rootDir
	rootCtl *ctlFile
	version *constFile
	ps      *roFile
	events  *eventsFile
	access  Access     // who besides root may use the mount
	images  *imagesDir // nil without an image store

	mu   sync.Mutex
	dirs map[Container]*containerDir // stable nodes: one per container
}

// New makes the filesystem over rt. version is ctrfs's own version.
func New(rt *runtime.Runtime, version string) *FS {
	return newFS(rtRuntime{rt}, version)
}

// newFS makes the filesystem over any Runtime (the tests' fake too).
func newFS(rt Runtime, version string) *FS {
	f := &FS{rt: rt, n: newNotifier(), dirs: map[Container]*containerDir{}}
	f.root = &rootDir{fs: f}
	f.rootCtl = rootTable.ctl(forgettingRuntime{rt, f})
	started := func() time.Time { return rt.Times().Started }
	f.rootCtl.mtime = started
	versionText := text("ctrfs " + version + "\nruntime " + rt.RuntimeVersion())
	f.version = newConstFile(started, func() []byte { return versionText })
	f.events = &eventsFile{rt: rt, n: f.n}
	f.events.stamp.mtime = func() time.Time { return rt.Times().Events }
	f.ps = newPSFile(rt)
	f.ps.stamp.mtime = func() time.Time { return rt.Times().Changed }
	if ir, ok := rt.(imagesRuntime); ok {
		if im := ir.Images(); im != nil {
			f.images = newImagesDir(im)
		}
	}
	return f
}

// Serve serves the filesystem on conn, mounted at mountpoint (an absolute
// path), until it is unmounted. poker writes the inotify pokes; without
// one, inotify watchers see no change.
func (f *FS) Serve(conn *fuse.Conn, mountpoint string, cfg *fs.Config, poker Poker) error {
	srv := fs.New(conn, f.withCaller(cfg))
	f.n.start(srv, mountpoint, poker)
	f.followChanges()
	return srv.Serve(f)
}

// Root is the mount's root directory.
func (f *FS) Root() (fs.Node, error) { return f.root, nil }

// dirFor returns the one directory node of container c. Stable nodes keep
// inode numbers stable, which inotify watchers depend on.
func (f *FS) dirFor(c Container) *containerDir {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d, ok := f.dirs[c]; ok {
		return d
	}
	// Forget the nodes of deleted containers.
	for old := range f.dirs {
		if cur, ok := f.rt.Get(old.ID()); !ok || cur != old {
			delete(f.dirs, old)
		}
	}
	d := newContainerDir(f, c)
	f.dirs[c] = d
	return d
}

// rootDir is the mount's root: ctl, version and one directory per container.
type rootDir struct {
	immutableDir
	fs *FS
}

func (d *rootDir) Attr(ctx context.Context, a *fuse.Attr) error {
	setAttr(ctx, a, kindDir)
	setTimes(a, d.fs.rt.Times().Changed)
	// Never cached: with a cached root, a stat of the mountpoint of a dead
	// daemon would succeed instead of failing with ENOTCONN, which is how
	// users (and the next daemon) tell a stale mount.
	a.Valid = 0
	return nil
}

func (d *rootDir) Lookup(ctx context.Context, req *fuse.LookupRequest, resp *fuse.LookupResponse) (fs.Node, error) {
	if err := allow(ctx, kindDir, mayExec); err != nil {
		return nil, err
	}
	switch req.Name {
	case "ctl":
		resp.EntryValid = 0 // a node per lookup: see ctlFile.fresh
		return d.fs.rootCtl.fresh(), nil
	case "version":
		return d.fs.version, nil
	case "events":
		return d.fs.events, nil
	case "ps":
		return d.fs.ps, nil
	case "images":
		if d.fs.images != nil {
			return d.fs.images, nil
		}
	}
	c, ok := d.fs.rt.Get(req.Name)
	if !ok {
		return nil, fuse.Errno(syscall.ENOENT)
	}
	// Containers come and go, and an id can be reused: cached, but
	// forgotten on every delete (see containerEntryValid).
	cacheContainerEntry(resp)
	return d.fs.dirFor(c), nil
}

func (d *rootDir) ReadDirAll(ctx context.Context) ([]fuse.Dirent, error) {
	if err := allow(ctx, kindDir, mayRead); err != nil {
		return nil, err
	}
	out := []fuse.Dirent{{Name: "ctl", Type: fuse.DT_File}, {Name: "events", Type: fuse.DT_File}}
	if d.fs.images != nil {
		out = append(out, fuse.Dirent{Name: "images", Type: fuse.DT_Dir})
	}
	out = append(out, fuse.Dirent{Name: "ps", Type: fuse.DT_File}, fuse.Dirent{Name: "version", Type: fuse.DT_File})
	for _, c := range d.fs.rt.List() {
		out = append(out, fuse.Dirent{Name: c.ID(), Type: fuse.DT_Dir})
	}
	return out, nil
}

// Remove is rmdir of a container directory: delete without --force.
func (d *rootDir) Remove(ctx context.Context, req *fuse.RemoveRequest) error {
	if err := allow(ctx, kindDir, mayWrite); err != nil {
		return err
	}
	c, ok := d.fs.rt.Get(req.Name)
	if !ok {
		switch req.Name {
		case "ctl", "version", "events", "images", "ps":
			return fuse.Errno(syscall.EACCES)
		}
		return fuse.Errno(syscall.ENOENT)
	}
	if !req.Dir {
		return fuse.Errno(syscall.EISDIR)
	}
	if err := d.fs.rt.Delete(ctx, c, false); err != nil {
		d.fs.dirFor(c).ctl.lastErr.set(describe(err))
		return errnoOf(err)
	}
	return nil
}

// staticDir is a directory with a fixed set of entries.
type staticDir struct {
	immutableDir
	entries map[string]fs.Node
	stamp   stamp // its times: its owner's create or start
}

func (d *staticDir) Attr(ctx context.Context, a *fuse.Attr) error {
	setAttr(ctx, a, kindDir)
	d.stamp.setTimes(a)
	return nil
}

func (d *staticDir) Lookup(ctx context.Context, req *fuse.LookupRequest, resp *fuse.LookupResponse) (fs.Node, error) {
	if err := allow(ctx, kindDir, mayExec); err != nil {
		return nil, err
	}
	if ctl, ok := d.entries[req.Name].(*ctlFile); ok {
		resp.EntryValid = 0 // a node per lookup: see ctlFile.fresh
		return ctl.fresh(), nil
	}
	if n, ok := d.entries[req.Name]; ok {
		return n, nil
	}
	return nil, fuse.Errno(syscall.ENOENT)
}

func (d *staticDir) ReadDirAll(ctx context.Context) ([]fuse.Dirent, error) {
	if err := allow(ctx, kindDir, mayRead); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(d.entries))
	for name := range d.entries {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]fuse.Dirent, 0, len(names))
	for _, name := range names {
		t := fuse.DT_File
		switch d.entries[name].(type) {
		case fs.NodeStringLookuper, fs.NodeRequestLookuper:
			t = fuse.DT_Dir
		}
		out = append(out, fuse.Dirent{Name: name, Type: t})
	}
	return out, nil
}
