package runtime

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"syscall"

	runc "github.com/containerd/go-runc"
	"github.com/ctrfs/ctrfs/internal/errmsg"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// runtimeCLI drives an OCI runtime binary for the daemon's orders (start,
// pause, resume, kill, update, checkpoint, delete) through go-runc, which already knows the
// runc command line; ctrfs adds only error text fit for a user.
type runtimeCLI struct {
	r *runc.Runc
}

func newRuntimeCLI(path, root string, args []string) *runtimeCLI {
	return &runtimeCLI{r: &runc.Runc{
		Command:   path,
		Root:      root,
		LogFormat: runc.JSON,
		ExtraArgs: args,
	}}
}

func (c *runtimeCLI) start(ctx context.Context, id string) error {
	return runtimeError("start", c.r.Start(ctx, id))
}

func (c *runtimeCLI) pause(ctx context.Context, id string) error {
	return runtimeError("pause", c.r.Pause(ctx, id))
}

func (c *runtimeCLI) resume(ctx context.Context, id string) error {
	return runtimeError("resume", c.r.Resume(ctx, id))
}

func (c *runtimeCLI) kill(ctx context.Context, id string, sig syscall.Signal, all bool) error {
	return runtimeError("kill", c.r.Kill(ctx, id, int(sig), &runc.KillOpts{All: all}))
}

// update applies new resource limits (runc update -r -).
func (c *runtimeCLI) update(ctx context.Context, id string, res *specs.LinuxResources) error {
	return runtimeError("update", c.r.Update(ctx, id, res))
}

// delete removes the runtime's record of the container; a container the
// runtime does not know (any more) is not an error.
func (c *runtimeCLI) delete(ctx context.Context, id string, force bool) error {
	err := runtimeError("delete", c.r.Delete(ctx, id, &runc.DeleteOpts{Force: force}))
	if err != nil && strings.Contains(err.Error(), "does not exist") {
		return nil
	}
	return err
}

// runtimeError turns go-runc's "exit status 1: <output>" into the runtime's
// own message: runc with --log-format json prints one JSON object per
// message, and the last error-level one says what failed.
func runtimeError(verb string, err error) error {
	if err == nil {
		return nil
	}
	var ee *exec.Error
	if errors.As(err, &ee) {
		return Errorf(KindRuntime, "%s: cannot run the runtime: %v", verb, err)
	}
	msg := err.Error()
	if _, out, ok := strings.Cut(msg, ": "); ok {
		if m := errmsg.LastRuntimeError([]byte(out)); m != "" {
			msg = m
		}
	}
	return Errorf(KindRuntime, "%s: %s", verb, oneLine(msg))
}

// oneLine keeps an error message on one line, as every ctl result is one.
func oneLine(s string) string { return errmsg.OneLine(s) }
