package fsys

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"syscall"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"
)

// Access says who may use the mount besides root (see docs/files.md,
// Security). The zero value lets root alone in.
//
// A file has one owner and one group, and without POSIX ACLs (bazil.org/fuse
// does not negotiate FUSE_POSIX_ACL, so the kernel ignores them) one group
// is all the kernel's default_permissions check and `ls -l` can express.
// So every node belongs to root and to one group: directories and read-only
// files to the read group (or the operators' group when there is no read
// group), ctl and stdin to the operators' group. With both groups,
// operators must also be members of the read group to reach the ctl files,
// and readers cannot read ctl files (their verbs and last error).
//
// The daemon checks every request against the same modes (allow), so what
// `ls -l` shows, what the kernel enforces and what the daemon enforces
// cannot disagree.
type Access struct {
	Operators, Readers Group
}

// Group is a group that Access lets in; Set false means none.
type Group struct {
	Set bool
	Gid uint32
}

// nodeKind is what a node is, for its mode: the policy knows three kinds.
type nodeKind int

const (
	kindDir  nodeKind = iota // a directory: list and traverse
	kindFile                 // a read-only file
	kindCtl                  // a ctl or stdin file: written by operators
)

// perm bits, as in a mode's group triplet.
const (
	mayExec  = 1
	mayWrite = 2
	mayRead  = 4
)

// mode is a node's owner group and permission bits. Root owns everything
// and others get nothing; the group gets what its role allows.
func (a Access) mode(k nodeKind) (gid uint32, perm os.FileMode) {
	see := a.Readers
	if !see.Set {
		see = a.Operators
	}
	switch k {
	case kindDir:
		if see.Set {
			return see.Gid, 0o550
		}
		return 0, 0o500
	case kindFile:
		if see.Set {
			return see.Gid, 0o440
		}
		return 0, 0o400
	}
	if a.Operators.Set {
		return a.Operators.Gid, 0o660
	}
	if a.Readers.Set {
		return a.Readers.Gid, 0o640
	}
	return 0, 0o600
}

// caller is who asked, carried in the request's context with the policy.
type caller struct {
	hdr    fuse.Header
	access Access
}

type callerKey struct{}

// withCaller makes cfg put each request's caller and the policy into its
// context, where attr and allow find them.
func (f *FS) withCaller(cfg *fs.Config) *fs.Config {
	if cfg == nil {
		cfg = &fs.Config{}
	}
	acc := f.access
	cfg.WithContext = func(ctx context.Context, req fuse.Request) context.Context {
		return context.WithValue(ctx, callerKey{}, &caller{hdr: *req.Hdr(), access: acc})
	}
	return cfg
}

// SetAccess sets who besides root may use the mount; call it before Serve.
func (f *FS) SetAccess(a Access) { f.access = a }

// setAttr gives a node of kind k its owner and mode.
func setAttr(ctx context.Context, a *fuse.Attr, k nodeKind) {
	var acc Access
	if c, ok := ctx.Value(callerKey{}).(*caller); ok {
		acc = c.access
	}
	gid, perm := acc.mode(k)
	a.Uid, a.Gid, a.Mode = 0, gid, perm
	if k == kindDir {
		a.Mode |= os.ModeDir
	}
}

// allow is the daemon's own check of a request on a node of kind k, beside
// the kernel's (default_permissions): root may do anything; a member of
// the node's group what its group bits say; anyone else nothing. A request
// without a caller (none can come from the kernel) is refused.
func allow(ctx context.Context, k nodeKind, want os.FileMode) error {
	c, ok := ctx.Value(callerKey{}).(*caller)
	if !ok {
		return fuse.Errno(syscall.EACCES)
	}
	if c.hdr.Uid == 0 {
		return nil
	}
	gid, perm := c.access.mode(k)
	if (perm>>3)&want == want && inGroup(&c.hdr, gid) {
		return nil
	}
	return fuse.Errno(syscall.EACCES)
}

// openWant is what an open with flags asks for.
func openWant(flags fuse.OpenFlags) os.FileMode {
	switch {
	case flags.IsReadOnly():
		return mayRead
	case flags.IsWriteOnly():
		return mayWrite
	}
	return mayRead | mayWrite
}

// inGroup tells whether the caller is in group gid: its fs gid, or one of
// its supplementary groups. FUSE gives only the former; the latter are the
// Groups: line of /proc/PID/status, PID being the calling thread as the
// daemon's pid namespace sees it (0 when the caller's is not visible from
// it: then only the fs gid counts).
func inGroup(hdr *fuse.Header, gid uint32) bool {
	if hdr.Gid == gid {
		return true
	}
	if hdr.Pid == 0 {
		return false
	}
	status, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(hdr.Pid), 10) + "/status")
	if err != nil {
		return false
	}
	for _, line := range bytes.Split(status, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte("Groups:"))
		if !ok {
			continue
		}
		for _, g := range bytes.Fields(rest) {
			if n, err := strconv.ParseUint(string(g), 10, 32); err == nil && uint32(n) == gid {
				return true
			}
		}
		return false
	}
	return false
}
