package tests

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// crictlIn runs crictl with stdin given, and returns its output and error.
func (c *criServer) crictlIn(stdin string, args ...string) (string, error) {
	ep := "unix://" + c.sock
	cmd := exec.Command(c.crictl, append([]string{"--config", "/dev/null", "--runtime-endpoint", ep, "--image-endpoint", ep, "--timeout", "60s"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// freePort is a TCP port of 127.0.0.1 free a moment ago.
func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestCRIStreaming: the streaming calls through the kubelet's streaming
// server, with crictl: exec -i (stdin in, output and exit code out), exec
// -it on a terminal, attach -i to an init created with stdin (stdin_once:
// its end ends init), port-forward to a server in the pod's network
// namespace.
func TestCRIStreaming(t *testing.T) {
	hostOnly(t, guestSlowCRI)
	_, bbRef, d, c := criSetup(t)
	dir := t.TempDir()
	c.run("pull", bbRef)
	pod := writeJSON(t, dir, "pod.json", map[string]any{
		"metadata": map[string]any{"name": "st", "namespace": "default", "uid": "uid-st"},
		"linux":    map[string]any{"security_context": map[string]any{"namespace_options": map[string]any{}}},
	})
	// The server answers each connection on 8080 with one line.
	srv := writeJSON(t, dir, "srv.json", map[string]any{
		"metadata": map[string]any{"name": "srv"},
		"image":    map[string]any{"image": bbRef},
		"command":  []string{"/bin/sh", "-c", `while :; do echo hello-pf | nc -l -p 8080; done`},
	})
	att := writeJSON(t, dir, "att.json", map[string]any{
		"metadata":   map[string]any{"name": "att"},
		"image":      map[string]any{"image": bbRef},
		"command":    []string{"/bin/sh", "-c", `while read x; do echo "att $x"; done; echo att-end`},
		"stdin":      true,
		"stdin_once": true,
	})
	podID := lastLine(c.run("runp", pod))
	srvID := lastLine(c.run("create", podID, srv, pod))
	c.run("start", srvID)
	d.waitState(srvID, "running")

	// exec -i: stdin reaches the command, its output comes back.
	if out, err := c.crictlIn("abc\n", "exec", "-i", srvID, "sh", "-c", "read x; echo got $x; echo to-err >&2"); err != nil || !strings.Contains(out, "got abc") || !strings.Contains(out, "to-err") {
		t.Errorf("crictl exec -i: %v\n%s", err, out)
	}
	// The exit code comes back as crictl's.
	out, err := c.crictlIn("", "exec", srvID, "sh", "-c", "exit 3")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !strings.Contains(out, "exit code 3") {
		t.Errorf("crictl exec of exit 3: %v (%v)\n%s", err, ee, out)
	}
	// exec -it on a terminal (script gives crictl one).
	cmd := exec.Command("script", "-qec", fmt.Sprintf("%s --config /dev/null --runtime-endpoint unix://%s exec -it %s sh -c 'tty; stty size'", c.crictl, c.sock, srvID), "/dev/null")
	cmd.Stdin = strings.NewReader("")
	if b, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(b), "/dev/pts/") {
		t.Errorf("crictl exec -it: %v\n%s", err, b)
	}
	if got := d.readDir(srvID, "processes"); len(got) != 1 {
		t.Errorf("processes after the execs: %q, want init only", got)
	}

	// port-forward: a local port reaches 8080 inside the pod.
	port := freePort(t)
	pf := startBg(t, c.crictl, "--config", "/dev/null", "--runtime-endpoint", "unix://"+c.sock, "port-forward", podID, fmt.Sprintf("%d:8080", port))
	var line string
	waitFor(t, "the forwarded port to answer", func() (bool, string) {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err != nil {
			return false, err.Error() + "\n" + pf.text()
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		line, err = bufio.NewReader(conn).ReadString('\n')
		return line == "hello-pf\n", fmt.Sprintf("read %q %v\n%s", line, err, pf.text())
	})

	// attach -i: stdin goes to init; its end closes init's stdin
	// (stdin_once), so init ends and so does the attach.
	attID := lastLine(c.run("create", podID, att, pod))
	c.run("start", attID)
	d.waitState(attID, "running")
	if out, err := c.crictlIn("zz\n", "attach", "-i", attID); err != nil || !strings.Contains(out, "att zz") || !strings.Contains(out, "att-end") {
		t.Errorf("crictl attach -i: %v\n%s", err, out)
	}
	d.waitState(attID, "stopped")

	c.run("stopp", podID)
	c.run("rmp", podID)
}
