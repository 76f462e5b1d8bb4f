package fsys

import (
	"context"
	"syscall"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"
)

// processesDir is ID/processes: one directory per process, init and every
// exec, exited ones included until they are removed. `rmdir
// processes/NAME` removes an exec that has exited.
type processesDir struct {
	immutableDir
	d *containerDir
}

func (p *processesDir) Attr(ctx context.Context, a *fuse.Attr) error {
	setAttr(ctx, a, kindDir)
	setTimes(a, p.d.c.Times().Created)
	return nil
}

func (p *processesDir) Lookup(ctx context.Context, req *fuse.LookupRequest, resp *fuse.LookupResponse) (fs.Node, error) {
	if err := allow(ctx, kindDir, mayExec); err != nil {
		return nil, err
	}
	proc := p.d.c.Process(req.Name)
	if proc == nil {
		return nil, fuse.Errno(syscall.ENOENT)
	}
	// Processes come and go, and a name can be reused after a removal:
	// have the kernel ask again every time rather than trust a cached entry.
	resp.EntryValid = 0
	return p.d.dirFor(proc), nil
}

func (p *processesDir) ReadDirAll(ctx context.Context) ([]fuse.Dirent, error) {
	if err := allow(ctx, kindDir, mayRead); err != nil {
		return nil, err
	}
	var out []fuse.Dirent
	for _, proc := range p.d.c.Processes() {
		out = append(out, fuse.Dirent{Name: proc.Name(), Type: fuse.DT_Dir})
	}
	return out, nil
}

// Remove is rmdir of a process directory: the exec must have exited. Why it
// failed is the last error of its ctl file.
func (p *processesDir) Remove(ctx context.Context, req *fuse.RemoveRequest) error {
	if err := allow(ctx, kindDir, mayWrite); err != nil {
		return err
	}
	proc := p.d.c.Process(req.Name)
	if proc == nil {
		return fuse.Errno(syscall.ENOENT)
	}
	if !req.Dir {
		return fuse.Errno(syscall.EISDIR)
	}
	if err := p.d.c.RemoveProcess(req.Name); err != nil {
		p.d.dirFor(proc).ctl.lastErr.set(describe(err))
		return errnoOf(err)
	}
	return nil
}

var _ fs.NodeRequestLookuper = (*processesDir)(nil)
