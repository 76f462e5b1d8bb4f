package cri

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
)

// Streaming Exec, Attach and PortForward: the gRPC calls hand out a URL of
// the kubelet's streaming server (k8s.io/cri-streaming), which calls back
// here with the client's streams once it connects. Exec and Attach are
// done through the tree: `exec NAME [--stdin] {JSON}`, processes/NAME/stdin,
// stdout.follow, stderr.follow, `resize` and `close-stdin` on its ctl.

// SetStreaming gives the server the streaming server its Exec, Attach and
// PortForward answers point at.
func (s *Server) SetStreaming(ss streaming.Server) { s.stream = ss }

// Streamer is what the streaming server calls back (streaming.Runtime).
func (s *Server) Streamer() streaming.Runtime { return streamer{s} }

// Exec answers with the URL where the client runs the command.
func (s *Server) Exec(ctx context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	c, err := s.running(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if len(req.Cmd) == 0 {
		return nil, status.Error(codes.InvalidArgument, "no command")
	}
	if !req.Stdout && !req.Stderr && !req.Stdin {
		return nil, status.Error(codes.InvalidArgument, "one of stdin, stdout and stderr must be asked for")
	}
	req.ContainerId = c.ID
	return s.stream.GetExec(req)
}

// Attach answers with the URL where the client attaches to init.
func (s *Server) Attach(ctx context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	c, err := s.running(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	req.ContainerId = c.ID
	return s.stream.GetAttach(req)
}

// PortForward answers with the URL where the client forwards ports.
func (s *Server) PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	sb, err := s.find("sandbox", req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	if sb.St.State != "running" {
		return nil, status.Errorf(codes.FailedPrecondition, "sandbox %s is %s, not running", sb.ID, sb.St.State)
	}
	req.PodSandboxId = sb.ID
	return s.stream.GetPortForward(req)
}

// running finds a running container.
func (s *Server) running(id string) (object, error) {
	if s.stream == nil {
		return object{}, status.Error(codes.Unimplemented, "no streaming server")
	}
	c, err := s.find("container", id)
	if err != nil {
		return c, err
	}
	if c.St.State != "running" {
		return c, status.Errorf(codes.FailedPrecondition, "container %s is %s, not running", c.ID, c.St.State)
	}
	return c, nil
}

type streamer struct{ s *Server }

// Exec runs cmd as a new process of the container, fed from in, its output
// to out and errw, and removes it afterwards. A non-zero exit is an
// utilexec.ExitError, which the streaming server sends as the exit code.
func (st streamer) Exec(ctx context.Context, id string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	s := st.s
	spec, err := json.Marshal(map[string]any{"args": cmd, "terminal": tty})
	if err != nil {
		return err
	}
	name := "cri-exec-" + newID()[:16]
	words := []string{name}
	if in != nil {
		words = append(words, "--stdin")
	}
	if err := s.t.Ctl("exec "+strings.Join(words, " ")+" "+string(spec), id, "ctl"); err != nil {
		return err
	}
	defer os.Remove(s.t.path(id, "processes", name))
	code, err := st.serve(ctx, id, name, in, out, errw, tty, resize, true, 0, 0)
	if err != nil {
		return err
	}
	if code != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command %q exited with %d", strings.Join(cmd, " "), code), Code: code}
	}
	return nil
}

// Attach joins init's streams: its stdin (when it was created with one),
// and its output from now on, until it exits or the client leaves.
func (st streamer) Attach(ctx context.Context, id string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	s := st.s
	c, err := s.find("container", id)
	if err != nil {
		return err
	}
	if in != nil && !c.M.Stdin {
		in = nil // no stdin to feed: what the client types is dropped
	}
	// What was printed before the attach is the logs' business: skip it.
	var skipOut, skipErr int64
	if fi, err := os.Stat(s.t.path(id, "processes", "init", "stdout")); err == nil {
		skipOut = fi.Size()
	}
	if fi, err := os.Stat(s.t.path(id, "processes", "init", "stderr")); err == nil {
		skipErr = fi.Size()
	}
	_, err = st.serve(ctx, id, "init", in, out, errw, tty && c.M.Tty, resize, c.M.StdinOnce, skipOut, skipErr)
	return err
}

// serve copies in to the process's stdin (closing it at in's end when
// closeStdin) and its output to out and errw (after skipping skipOut and
// skipErr bytes), carries the resizes, and returns its exit code once it
// has exited and its output is all sent. The client leaving (ctx) ends it
// early: an exec's process is then killed, init goes on.
func (st streamer) serve(ctx context.Context, id, name string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, closeStdin bool, skipOut, skipErr int64) (int, error) {
	s := st.s
	proc := func(elem ...string) string { return s.t.path(append([]string{id, "processes", name}, elem...)...) }
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	follow := func(stream string, w io.WriteCloser, skip int64) {
		if w == nil {
			return
		}
		f, err := os.Open(proc(stream + ".follow"))
		if err != nil {
			s.log.WithError(err).Warn("stream: open output")
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer f.Close()
			if skip > 0 {
				io.CopyN(io.Discard, f, skip)
			}
			io.Copy(w, f)
		}()
		go func() { <-ctx.Done(); f.Close() }()
	}
	follow("stdout", out, skipOut)
	if !tty {
		follow("stderr", errw, skipErr)
	}
	if in != nil {
		go func() {
			f, err := os.OpenFile(proc("stdin"), os.O_WRONLY, 0)
			if err != nil {
				return
			}
			_, err = io.Copy(f, in)
			f.Close()
			if err == nil && closeStdin && ctx.Err() == nil {
				s.t.Ctl("close-stdin", id, "processes", name, "ctl")
			}
		}()
	}
	if resize != nil {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case sz, ok := <-resize:
					if !ok {
						return
					}
					if sz.Width > 0 && sz.Height > 0 {
						s.t.Ctl(fmt.Sprintf("resize %d %d", sz.Width, sz.Height), id, "processes", name, "ctl")
					}
				}
			}
		}()
	}
	type result struct {
		b   []byte
		err error
	}
	waitc := make(chan result, 1)
	go func() {
		b, err := s.t.Read(id, "processes", name, "wait")
		waitc <- result{b, err}
	}()
	var w result
	select {
	case w = <-waitc:
	case <-ctx.Done():
		if name != "init" {
			s.t.Ctl("kill KILL", id, "processes", name, "ctl")
			<-waitc
		}
		cancel()
		wg.Wait()
		return 0, ctx.Err()
	}
	wg.Wait() // the output is all sent: the follows end at the exit
	if w.err != nil {
		return 0, w.err
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(w.b)))
	if err != nil {
		code = 255
	}
	return code, nil
}

// PortForward connects stream to 127.0.0.1:port inside the sandbox's
// network namespace.
func (st streamer) PortForward(ctx context.Context, podID string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	sb, err := st.s.find("sandbox", podID)
	if err != nil {
		return err
	}
	if sb.St.Pid == 0 {
		return fmt.Errorf("sandbox %s has no process", podID)
	}
	conn, err := dialInNetns(fmt.Sprintf("/proc/%d/ns/net", sb.St.Pid), fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return fmt.Errorf("port %d in sandbox %s: %w", port, podID, err)
	}
	defer conn.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(conn, stream); conn.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	go func() { io.Copy(stream, conn); done <- struct{}{} }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return nil
}

// dialInNetns makes a TCP connection from inside the network namespace at
// nsPath: a socket belongs to the namespace it was made in, so the thread
// enters it only for the dial. A thread that could not come back is left
// locked, so Go ends it instead of reusing it.
func dialInNetns(nsPath, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		defer self.Close()
		target, err := os.Open(nsPath)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("setns: %w", err)}
			return
		}
		c, err := net.Dial("tcp4", addr)
		if unix.Setns(int(self.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}
