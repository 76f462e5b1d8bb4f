package fsys

import (
	"context"
	"syscall"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"
)

// immutableDir refuses, with EACCES, every change to a directory's entries
// that the tree does not offer (creating, linking, renaming, removing files).
// Without it the library would answer EIO, which in ctrfs means "the runtime
// failed". Directories embed it and override what they do support.
type immutableDir struct{}

var errNotHere = fuse.Errno(syscall.EACCES)

func (immutableDir) Remove(ctx context.Context, req *fuse.RemoveRequest) error { return errNotHere }

func (immutableDir) Rename(ctx context.Context, req *fuse.RenameRequest, newDir fs.Node) error {
	return errNotHere
}

func (immutableDir) Mkdir(ctx context.Context, req *fuse.MkdirRequest) (fs.Node, error) {
	return nil, errNotHere
}

func (immutableDir) Create(ctx context.Context, req *fuse.CreateRequest, resp *fuse.CreateResponse) (fs.Node, fs.Handle, error) {
	return nil, nil, errNotHere
}

func (immutableDir) Symlink(ctx context.Context, req *fuse.SymlinkRequest) (fs.Node, error) {
	return nil, errNotHere
}

func (immutableDir) Link(ctx context.Context, req *fuse.LinkRequest, old fs.Node) (fs.Node, error) {
	return nil, errNotHere
}

func (immutableDir) Mknod(ctx context.Context, req *fuse.MknodRequest) (fs.Node, error) {
	return nil, errNotHere
}

// Setattr refuses chmod, chown and utimes of a directory: the tree's modes
// and owners are the daemon's to say (without it the library would answer
// 0 and change nothing).
func (immutableDir) Setattr(ctx context.Context, req *fuse.SetattrRequest, resp *fuse.SetattrResponse) error {
	return errNotHere
}
