package cri

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// maxExecOutput bounds what ExecSync keeps of each stream, as the kubelet
// bounds probe output.
const maxExecOutput = 16 << 20

// ExecSync runs a command in the container (`exec NAME {JSON}` on its ctl),
// waits for it (processes/NAME/wait) within the timeout, KILLs it past that,
// returns its output and exit code, and removes it (rmdir).
func (s *Server) ExecSync(ctx context.Context, req *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	c, err := s.find("container", req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if len(req.Cmd) == 0 {
		return nil, status.Error(codes.InvalidArgument, "no command")
	}
	spec, err := json.Marshal(map[string]any{"args": req.Cmd})
	if err != nil {
		return nil, err
	}
	name := "cri-exec-" + newID()[:16]
	if err := s.t.Ctl("exec "+name+" "+string(spec), c.ID, "ctl"); err != nil {
		return nil, treeStatus("exec", err)
	}
	defer os.Remove(s.t.path(c.ID, "processes", name))
	var timeout <-chan time.Time
	if req.Timeout > 0 {
		t := time.NewTimer(time.Duration(req.Timeout) * time.Second)
		defer t.Stop()
		timeout = t.C
	}
	// Both streams are followed (stdout.follow, stderr.follow) to their
	// EOF, which comes once the process has exited and all is read.
	type result struct {
		b   []byte
		err error
	}
	read := func(stream string) chan result {
		ch := make(chan result, 1)
		go func() {
			f, err := os.Open(s.t.path(c.ID, "processes", name, stream+".follow"))
			if err != nil {
				ch <- result{err: err}
				return
			}
			defer f.Close()
			b, err := io.ReadAll(io.LimitReader(f, maxExecOutput))
			io.Copy(io.Discard, f)
			ch <- result{b, err}
		}()
		return ch
	}
	outc, errc := read("stdout"), read("stderr")
	waitc := make(chan result, 1)
	go func() {
		b, err := s.t.Read(c.ID, "processes", name, "wait")
		waitc <- result{b, err}
	}()
	var w result
	timedOut := false
	select {
	case w = <-waitc:
	case <-timeout:
		timedOut = true
	case <-ctx.Done():
		timedOut = true
	}
	if timedOut {
		s.t.Ctl("kill KILL", c.ID, "processes", name, "ctl")
		<-waitc
		<-outc
		<-errc
		return nil, status.Errorf(codes.DeadlineExceeded, "command %q timed out after %ds", strings.Join(req.Cmd, " "), req.Timeout)
	}
	if w.err != nil {
		return nil, treeStatus("exec wait", w.err)
	}
	out, serr := <-outc, <-errc
	code, err := strconv.Atoi(strings.TrimSpace(string(w.b)))
	if err != nil {
		code = 255
	}
	return &runtimeapi.ExecSyncResponse{Stdout: out.b, Stderr: serr.b, ExitCode: int32(code)}, nil
}
