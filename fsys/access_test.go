package fsys

import (
	"context"
	"os"
	"testing"

	"bazil.org/fuse"
)

// TestAllow is the daemon's own check, without the kernel's: the access
// matrix of docs/files.md by node kind, for callers known by their fs gid
// alone (Pid 0: no /proc lookup).
func TestAllow(t *testing.T) {
	const ops, rd, nobody = 1001, 1002, 1003
	both := Access{Operators: Group{Set: true, Gid: ops}, Readers: Group{Set: true, Gid: rd}}
	callers := map[string]fuse.Header{
		"root":     {Uid: 0, Gid: nobody},
		"operator": {Uid: 5000, Gid: ops},
		"reader":   {Uid: 5001, Gid: rd},
		"other":    {Uid: 5002, Gid: nobody},
	}
	for _, c := range []struct {
		access Access
		kind   nodeKind
		want   os.FileMode
		allow  []string
	}{
		{both, kindDir, mayRead | mayExec, []string{"root", "reader"}}, // operators come in as readers
		{both, kindDir, mayWrite, []string{"root"}},
		{both, kindFile, mayRead, []string{"root", "reader"}},
		{both, kindFile, mayWrite, []string{"root"}},
		{both, kindCtl, mayRead | mayWrite, []string{"root", "operator"}},
		{both, kindCtl, mayRead, []string{"root", "operator"}},
		{Access{Readers: both.Readers}, kindCtl, mayRead, []string{"root", "reader"}},
		{Access{Readers: both.Readers}, kindCtl, mayWrite, []string{"root"}},
		{Access{Operators: both.Operators}, kindFile, mayRead, []string{"root", "operator"}},
		{Access{}, kindFile, mayRead, []string{"root"}},
		{Access{}, kindCtl, mayWrite, []string{"root"}},
	} {
		for name, hdr := range callers {
			ctx := context.WithValue(context.Background(), callerKey{}, &caller{hdr: hdr, access: c.access})
			allowed := false
			for _, a := range c.allow {
				allowed = allowed || a == name
			}
			if err := allow(ctx, c.kind, c.want); (err == nil) != allowed {
				t.Errorf("%+v kind %d want %o, %s: %v, want allowed %v", c.access, c.kind, c.want, name, err, allowed)
			}
		}
	}
	// No caller in the context: refused, even root's kind of request.
	if allow(context.Background(), kindFile, mayRead) == nil {
		t.Error("a request without a caller was allowed")
	}
}
