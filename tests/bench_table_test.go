package tests

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkTable measures every row of issue 12's table with N demo
// containers already running under ctrfs and N under bare runc, at N=20
// and N=100. Each row is paired: in every iteration one ctrfs operation and
// its bare counterpart (runc, or a tmpfs file for reads: the floor of any
// file API), each timed on its own, so that the drift of a shared machine
// cancels out in the ratio.
func BenchmarkTable(b *testing.B) {
	for _, n := range []int{20, 100} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			e := newBenchEnv(b, n)
			b.Run("CreateStart", e.createStart)
			b.Run("Teardown", e.teardown)
			for _, f := range []string{"state", "pids", "stats", "status"} {
				b.Run("Read_"+f, func(b *testing.B) { e.readVsFloor(b, f) })
			}
			b.Run("StateVsRuncState", e.stateVsRunc)
			b.Run("CatState", e.catState)
			b.Run("Exec", e.exec)
			b.Run("ExitToWait", e.exitToWait)
			e.memory(b)
		})
	}
}

// benchEnv is a daemon with n demo containers running, n bare runc
// containers beside them, and a tmpfs file holding what ctrfs's state holds.
type benchEnv struct {
	n            int
	d            *daemon
	bundle, root string
	ids          []string // ctrfs's
	floor        string   // a tmpfs file with "running\n"
	prefix       string
}

func newBenchEnv(b *testing.B, n int) *benchEnv {
	// Idle inits: the demo's loop would fork twice N times a second.
	e := &benchEnv{n: n, d: startDaemon(b), bundle: newBundle(b, "sleep", "1000000"), root: runcRoot(b), prefix: newID("bt")}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("%s-bg%d", e.prefix, i)
		e.d.mustCtl("run " + id + " " + e.bundle + "\n")
		e.ids = append(e.ids, id)
		runcRunDetached(b, e.root, e.bundle, "r"+id, filepath.Join(e.root, "..", "pid"))
	}
	b.Cleanup(func() {
		for _, id := range e.ids {
			e.d.ctl("delete " + id + " --force\n")
		}
	})
	dir, err := os.MkdirTemp("/dev/shm", "ctrfs-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	e.floor = filepath.Join(dir, "state")
	if err := os.WriteFile(e.floor, []byte("running\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	return e
}

func (e *benchEnv) what(row string) string { return fmt.Sprintf("%s, N=%d", row, e.n) }

// pair runs ctrfs's and the bare side's operation b.N times, alternated
// and in turns first (timePair), timing each; setup and cleanup (untimed)
// get the iteration's number.
func (e *benchEnv) pair(b *testing.B, what, target string, setup func(i int), ctrfs, bare func(i int), cleanup func(i int)) {
	var c, r time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if setup != nil {
			setup(i)
		}
		b.StartTimer()
		dc, dr := timePair(i, func() { ctrfs(i) }, func() { bare(i) })
		c += dc
		r += dr
		b.StopTimer()
		if cleanup != nil {
			cleanup(i)
		}
		b.StartTimer()
	}
	b.StopTimer()
	reportPaired(b, e.what(what), c, r, target)
}

func (e *benchEnv) id(i int) string { return fmt.Sprintf("%s-%d", e.prefix, i) }

// createStart: `run` through ctl until state reads running, vs `runc run -d`.
func (e *benchEnv) createStart(b *testing.B) {
	e.prefix = newID("bcs")
	e.pair(b, "create+start (run vs runc run -d)", "goal: ctrfs/runc <= 1.05", nil,
		func(i int) { e.runCtrfs(b, e.id(i)) },
		func(i int) { runcRunDetached(b, e.root, e.bundle, "r"+e.id(i), filepath.Join(e.root, "..", "pid")) },
		func(i int) {
			e.d.mustCtl("delete " + e.id(i) + " --force\n")
			e.runc(b, "delete", "-f", "r"+e.id(i))
		})
}

func (e *benchEnv) runCtrfs(b *testing.B, id string) {
	if err := e.d.write("run "+id+" "+e.bundle+"\n", "ctl"); err != nil {
		b.Fatalf("run %s: %v\n%s", id, err, e.d.read("ctl"))
	}
	if s, err := os.ReadFile(e.d.path(id, "state")); err != nil || string(s) != "running\n" {
		b.Fatalf("%s/state = %q, %v", id, s, err)
	}
}

func (e *benchEnv) runc(b *testing.B, args ...string) {
	if out, err := exec.Command("runc", append([]string{"--root", e.root}, args...)...).CombinedOutput(); err != nil {
		b.Fatalf("runc %v: %v: %s", args, err, out)
	}
}

// teardown: `delete ID --force` of a running container vs `runc kill ID
// KILL` and `runc delete -f ID`.
func (e *benchEnv) teardown(b *testing.B) {
	e.prefix = newID("btd")
	e.pair(b, "teardown of a running container (delete --force vs runc kill KILL + runc delete -f)", "goal: ctrfs/runc <= 1.1",
		func(i int) {
			e.runCtrfs(b, e.id(i))
			runcRunDetached(b, e.root, e.bundle, "r"+e.id(i), filepath.Join(e.root, "..", "pid"))
		},
		func(i int) { e.d.mustCtl("delete " + e.id(i) + " --force\n") },
		func(i int) {
			e.runc(b, "kill", "r"+e.id(i), "KILL")
			e.runc(b, "delete", "-f", "r"+e.id(i))
		}, nil)
}

// readVsFloor: open+read+close of ID/file in-process vs the same of a
// tmpfs file.
func (e *benchEnv) readVsFloor(b *testing.B, file string) {
	p := e.d.path(e.ids[e.n/2], file)
	e.pair(b, file+" read in-process vs a tmpfs file", "goal: <= 0.1 ms (stats may add its cgroup reads)", nil,
		func(int) {
			if s, err := os.ReadFile(p); err != nil || len(s) == 0 {
				b.Fatalf("read %s: %q, %v", p, s, err)
			}
		},
		func(int) {
			if _, err := os.ReadFile(e.floor); err != nil {
				b.Fatal(err)
			}
		}, nil)
}

// stateVsRunc: open+read+close of ID/state vs `runc state`.
func (e *benchEnv) stateVsRunc(b *testing.B) {
	p := e.d.path(e.ids[e.n/2], "state")
	args := []string{"--root", e.root, "state", "r" + e.ids[e.n/2]}
	e.pair(b, "state read in-process vs runc state", "goal: runc/ctrfs >= 50", nil,
		func(int) {
			if s, err := os.ReadFile(p); err != nil || !isRunning(s) {
				b.Fatalf("read %s: %q, %v", p, s, err)
			}
		},
		func(int) {
			if out, err := exec.Command("runc", args...).Output(); err != nil || !bytes.Contains(out, []byte(`"running"`)) {
				b.Fatalf("runc state: %v: %s", err, out)
			}
		}, nil)
}

// catState: a `cat` process reading ID/state vs `cat` of the tmpfs file:
// what a shell pays, the fork and exec of the client included.
func (e *benchEnv) catState(b *testing.B) {
	p := e.d.path(e.ids[e.n/2], "state")
	cat := func(path string) func(int) {
		return func(int) {
			if out, err := exec.Command("cat", path).Output(); err != nil || string(out) != "running\n" {
				b.Fatalf("cat %s: %q, %v", path, out, err)
			}
		}
	}
	e.pair(b, "cat state vs cat of a tmpfs file", "goal: ctrfs - tmpfs <= 0.1 ms", nil, cat(p), cat(e.floor), nil)
}

// exec: `exec NAME -- true` through ctl and a read of its wait vs `runc
// exec ID true`.
func (e *benchEnv) exec(b *testing.B) {
	id := e.ids[e.n/2]
	e.pair(b, "exec true, waited for (vs runc exec)", "goal: ctrfs/runc <= 1.05", nil,
		func(i int) {
			name := fmt.Sprintf("bx%d", i)
			if err := e.d.write("exec "+name+" -- true\n", id, "ctl"); err != nil {
				b.Fatalf("exec: %v\n%s", err, e.d.read(id, "ctl"))
			}
			if s, err := os.ReadFile(e.d.path(id, "processes", name, "wait")); err != nil || string(s) != "0\n" {
				b.Fatalf("%s/wait = %q, %v", name, s, err)
			}
		},
		func(int) { e.runc(b, "exec", "r"+id, "true") },
		func(i int) { os.Remove(e.d.path(id, "processes", fmt.Sprintf("bx%d", i))) })
}

// exitToWait: an exec'd sleep is SIGKILLed; from the kernel's notice of
// the exit (its pidfd readable) to a blocked read of its wait returning,
// vs from the same notice of a foreground `runc run`'s container to `runc
// run` returning.
func (e *benchEnv) exitToWait(b *testing.B) {
	id := e.ids[e.n/2]
	bundle := newBundle(b, "sleep", "1000")
	var c, r time.Duration
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("bw%d", i)
		e.d.mustCtl("exec "+name+" -- sleep 1000\n", id)
		pid, _ := strconv.Atoi(strings.TrimSpace(e.d.read(id, "processes", name, "pid")))
		done := make(chan time.Time, 1)
		go func() { e.d.read(id, "processes", name, "wait"); done <- time.Now() }()
		time.Sleep(20 * time.Millisecond) // the reader is blocked by then
		exited := killSeen(b, pid)
		c += (<-done).Sub(exited)
		os.Remove(e.d.path(id, "processes", name))
		returned, exited := runcKilled(b, e.root, bundle, newID("rbw"))
		r += (<-returned).Sub(exited)
	}
	reportPaired(b, e.what("exit to wait returning, from the kernel's notice (vs runc run returning)"), c, r, "goal: ctrfs <= 1.0 ms")
}

// killSeen SIGKILLs pid and returns when its pidfd became readable.
func killSeen(b *testing.B, pid int) time.Time {
	pfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(pfd)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		b.Fatal(err)
	}
	if r := pollFd(pfd, unix.POLLIN, waitTimeout); r.err != nil || r.n == 0 {
		b.Fatalf("pidfd of %d: no exit within %v", pid, waitTimeout)
	}
	return time.Now()
}

// runcKilled starts a container with a foreground `runc run`, kills its
// init and returns when `runc run` returned and when the kernel saw the
// exit.
func runcKilled(b *testing.B, root, bundle, id string) (chan time.Time, time.Time) {
	pidFile := filepath.Join(root, "..", id+".pid")
	cmd := exec.Command("runc", "--root", root, "run", "--pid-file", pidFile, "--bundle", bundle, id)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { exec.Command("runc", "--root", root, "delete", "-f", id).Run() })
	var pid int
	waitFor(b, "runc run to write its pid file", func() (bool, string) {
		raw, err := os.ReadFile(pidFile)
		if err != nil {
			return false, err.Error()
		}
		_, err = fmt.Sscan(string(raw), &pid)
		return err == nil, string(raw)
	})
	done := make(chan time.Time, 1)
	go func() { cmd.Wait(); done <- time.Now() }()
	return done, killSeen(b, pid)
}

// memory reports the daemon's RSS and the shims' mean RSS and PSS
// (smaps_rollup) with the env's containers running.
func (e *benchEnv) memory(b *testing.B) {
	rss, _ := smapsRollup(b, e.d.cmd.Process.Pid)
	var srss, spss float64
	for _, id := range e.ids {
		raw, err := os.ReadFile(filepath.Join(e.d.state, id, "init", "shim.pid"))
		if err != nil {
			b.Fatal(err)
		}
		pid, _ := strconv.Atoi(strings.Fields(string(raw))[0])
		r, p := smapsRollup(b, pid)
		srss += r
		spss += p
	}
	recordSummary(e.what("memory"), fmt.Sprintf("ratio %s: daemon RSS %.1f MB with %d containers; shim RSS %.2f MB, PSS %.2f MB (mean of %d) (goal: daemon <= 20 MB at 100, shim <= 3 MB / <= 1 MB)",
		e.what("memory"), rss, e.n, srss/float64(e.n), spss/float64(e.n), e.n))
}

// smapsRollup returns a process's RSS and PSS in MB.
func smapsRollup(b *testing.B, pid int) (rss, pss float64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(fs[1], 64)
		switch fs[0] {
		case "Rss:":
			rss = kb / 1024
		case "Pss:":
			pss = kb / 1024
		}
	}
	return rss, pss
}
