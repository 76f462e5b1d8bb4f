package fsys

import (
	"context"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"

	"github.com/ctrfs/ctrfs/runtime"
)

// checkpointsDir is ID/checkpoints/: the container's checkpoints, those in
// <bundle>/checkpoints. ls lists them; mkdir NAME checkpoints the container
// with the default options (it keeps running); rmdir NAME deletes one.
// Errors are also the container's last error (cat ID/ctl).
type checkpointsDir struct {
	immutableDir
	c       Container
	lastErr *lastError
}

func (d *checkpointsDir) Attr(ctx context.Context, a *fuse.Attr) error {
	setAttr(ctx, a, kindDir)
	setTimes(a, d.c.Times().Created)
	return nil
}

func (d *checkpointsDir) Lookup(ctx context.Context, req *fuse.LookupRequest, resp *fuse.LookupResponse) (fs.Node, error) {
	if err := allow(ctx, kindDir, mayExec); err != nil {
		return nil, err
	}
	if _, err := d.c.CheckpointConfig(req.Name); err != nil {
		return nil, fuse.ENOENT
	}
	// Checkpoints come and go (by rmdir, or by hand in the bundle): have
	// the kernel ask again every time.
	resp.EntryValid = 0
	return newCheckpointDir(d.c, req.Name), nil
}

func (d *checkpointsDir) ReadDirAll(ctx context.Context) ([]fuse.Dirent, error) {
	if err := allow(ctx, kindDir, mayRead); err != nil {
		return nil, err
	}
	names, err := d.c.Checkpoints()
	if err != nil {
		return nil, errnoOf(err)
	}
	out := make([]fuse.Dirent, 0, len(names))
	for _, n := range names {
		out = append(out, fuse.Dirent{Name: n, Type: fuse.DT_Dir})
	}
	return out, nil
}

// Mkdir is `checkpoint NAME` with the default options.
func (d *checkpointsDir) Mkdir(ctx context.Context, req *fuse.MkdirRequest) (fs.Node, error) {
	if err := allow(ctx, kindDir, mayWrite); err != nil {
		return nil, err
	}
	if err := d.c.Checkpoint(ctx, runtime.CheckpointRequest{Name: req.Name}); err != nil {
		d.lastErr.set(describe(err))
		return nil, errnoOf(err)
	}
	return newCheckpointDir(d.c, req.Name), nil
}

// Remove is rmdir of a checkpoint: it deletes it.
func (d *checkpointsDir) Remove(ctx context.Context, req *fuse.RemoveRequest) error {
	if err := allow(ctx, kindDir, mayWrite); err != nil {
		return err
	}
	if !req.Dir {
		return errNotHere
	}
	if err := d.c.DeleteCheckpoint(req.Name); err != nil {
		d.lastErr.set(describe(err))
		return errnoOf(err)
	}
	return nil
}

// newCheckpointDir is checkpoints/NAME/: its config.json.
func newCheckpointDir(c Container, name string) *staticDir {
	return &staticDir{entries: map[string]fs.Node{
		"config.json": newROFile(func() ([]byte, error) { return c.CheckpointConfig(name) }),
	}}
}
