package fsys

import (
	"context"
	"time"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"
)

// containerEntryValid is how long the kernel may keep a container
// directory's entry in the root without asking again (LOOKUP). Every
// path to a container's file crosses that entry: cached, a read of
// ID/state is one FUSE round trip shorter. Ids come and go and can be
// reused, so every delete drops the cached entry (forgetContainer): the
// ctl delete orders wait until it is gone, so what is written after them
// (a new create of the same id) never meets the old directory; rmdir needs
// nothing (the kernel drops the entry of a removed directory itself);
// other deletes (--rm) drop it as soon as they are published.
const containerEntryValid = time.Minute

// cacheContainerEntry lets the kernel keep the entry a lookup answers.
func cacheContainerEntry(resp *fuse.LookupResponse) { resp.EntryValid = containerEntryValid }

// forgetEntry has the kernel drop its cached entry name of parent. The
// invalidation goes from a goroutine of its own: sent from a handler whose
// request holds parent's lock (an rmdir), it would wait for that lock for
// ever. The channel closes once the kernel has dropped the entry (or had
// none).
func (n *notifier) forgetEntry(parent fs.Node, name string) <-chan struct{} {
	done := make(chan struct{})
	srv := n.srv.Load()
	if srv == nil { // not serving yet: the kernel caches nothing
		close(done)
		return done
	}
	go func() {
		defer close(done)
		srv.InvalidateEntry(parent, name) // ErrNotCached: nothing to drop
	}()
	return done
}

// forgettingRuntime is the Runtime the ctl files' delete orders use: once
// a delete succeeds it waits until the kernel has forgotten the
// container's entry, so the writer's next order sees the present.
type forgettingRuntime struct {
	Runtime
	f *FS
}

func (r forgettingRuntime) Delete(ctx context.Context, c Container, force bool) error {
	if err := r.Runtime.Delete(ctx, c, force); err != nil {
		return err
	}
	<-r.f.n.forgetEntry(r.f.root, c.ID())
	return nil
}
