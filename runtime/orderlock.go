package runtime

import (
	"context"
	"sync"
)

// orderLock serialises a container's orders (Container.ops). Unlike a
// mutex, a wait for it can be given up: a writer waiting behind a slow
// order is interrupted (the kernel sends FUSE an INTERRUPT, which cancels
// the request's context) and its write fails with EINTR, instead of
// sitting unkillable until the order ahead of it ends. An order that holds
// the lock is never abandoned (see orderContext).
type orderLock struct {
	once sync.Once
	ch   chan struct{} // holds a token while the lock is held
}

func (l *orderLock) sem() chan struct{} {
	l.once.Do(func() { l.ch = make(chan struct{}, 1) })
	return l.ch
}

// Lock waits for the lock, for as long as it takes.
func (l *orderLock) Lock() { l.sem() <- struct{}{} }

// lockCtx waits for the lock until ctx ends.
func (l *orderLock) lockCtx(ctx context.Context, what string) error {
	select {
	case l.sem() <- struct{}{}:
		return nil
	default:
	}
	select {
	case l.sem() <- struct{}{}:
		return nil
	case <-ctx.Done():
		return Errorf(KindInterrupted, "%s: interrupted while waiting for the order under way to finish", what)
	}
}

// Unlock releases the lock.
func (l *orderLock) Unlock() { <-l.sem() }
