package tests

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkExecPaired alternates, in every iteration, an exec of `true`
// through ctrfs and a bare `runc exec` of `true` into a container of its
// own, each timed from the order to the process's exit being known:
//   - ctrfs: `exec NAME -- true` written to ctl, then a read of
//     processes/NAME/wait, which returns with the exit status;
//   - runc: `runc exec ID true`, which returns when true has exited.
//
// The removal of the finished exec (rmdir) is untimed. Issue 4 target:
// ctrfs/runc <= 1.1.
func BenchmarkExecPaired(b *testing.B) {
	d := startDaemon(b)
	bundle := demoBundle(b)
	id := newID("bxp")
	d.run(id, bundle)
	b.Cleanup(func() { d.ctl("delete " + id + " --force\n") })
	root := runcRoot(b)
	runcRunDetached(b, root, bundle, "r"+id, filepath.Join(root, "..", "pid"))
	var ctrfsTime, runcTime time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("t%d", i)
		c, r := timePair(i, func() {
			if err := d.write("exec "+name+" -- true\n", id, "ctl"); err != nil {
				b.Fatalf("exec %s: %v\n%s", name, err, d.read(id, "ctl"))
			}
			if s, err := os.ReadFile(d.path(id, "processes", name, "wait")); err != nil || string(s) != "0\n" {
				b.Fatalf("%s/wait = %q, %v", name, s, err)
			}
		}, func() {
			if out, err := exec.Command("runc", "--root", root, "exec", "r"+id, "true").CombinedOutput(); err != nil {
				b.Fatalf("runc exec: %v: %s", err, out)
			}
		})
		ctrfsTime += c
		runcTime += r
		b.StopTimer()
		if err := os.Remove(d.path(id, "processes", name)); err != nil {
			b.Fatalf("rmdir %s: %v", name, err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	reportPaired(b, "exec true (paired)", ctrfsTime, runcTime, "target: ctrfs/runc <= 1.1")
}

// throughputBytes is what the throughput benchmark's process writes.
const throughputBytes = 256 << 20

// BenchmarkStdoutThroughput has a process write 256 MiB to its stdout
// (`dd` from /dev/zero, 64 KiB blocks) while a Go reader follows
// processes/NAME/stdout.follow through the mount (1 MiB reads, as os.File does
// them: non-blocking, waiting for poll wake-ups), from the exec until EOF:
// the bytes go process -> pipe -> shim -> log file -> daemon -> FUSE ->
// reader. The daemon's --log-max-size is above 256 MiB, so every byte is
// still there for the reader and the count is checked. It reports, in
// MB/s (10^6 bytes), beside it:
//   - fuse-after: reading the same finished log through the mount again;
//   - plain: reading the same bytes from the log file itself (page cache),
//     the ceiling of any reader.
func BenchmarkStdoutThroughput(b *testing.B) {
	d := startDaemon(b, "--log-max-size", fmt.Sprint(512<<20))
	id := newID("btp")
	d.run(id, demoBundle(b))
	b.Cleanup(func() { d.ctl("delete " + id + " --force\n") })
	var live, after, plain time.Duration
	b.SetBytes(throughputBytes)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("dd%d", i)
		start := time.Now()
		cmd := fmt.Sprintf("exec %s -- dd if=/dev/zero bs=65536 count=%d\n", name, throughputBytes/65536)
		if err := d.write(cmd, id, "ctl"); err != nil {
			b.Fatalf("exec: %v\n%s", err, d.read(id, "ctl"))
		}
		stdout := d.path(id, "processes", name, "stdout")
		n := readAllCount(b, stdout+".follow")
		live += time.Since(start)
		if n != throughputBytes {
			b.Fatalf("read %d bytes through the mount, want %d", n, throughputBytes)
		}
		b.StopTimer()
		start = time.Now()
		if n := readAllCount(b, stdout); n != throughputBytes {
			b.Fatalf("read %d bytes again, want %d", n, throughputBytes)
		}
		after += time.Since(start)
		log := filepath.Join(d.state, id, name, "stdout")
		readAllCount(b, log) // into the page cache, as the mount's reads had it
		start = time.Now()
		if n := readAllCount(b, log); n != throughputBytes {
			b.Fatalf("read %d bytes of the log file, want %d", n, throughputBytes)
		}
		plain += time.Since(start)
		if err := os.Remove(d.path(id, "processes", name)); err != nil {
			b.Fatalf("rmdir %s: %v", name, err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	mbps := func(t time.Duration) float64 { return float64(throughputBytes) * float64(b.N) / t.Seconds() / 1e6 }
	b.ReportMetric(mbps(live), "live-MB/s")
	b.ReportMetric(mbps(after), "fuse-after-MB/s")
	b.ReportMetric(mbps(plain), "plain-MB/s")
	recordSummary("stdout throughput", fmt.Sprintf("ratio stdout throughput: %.0f MB/s live (exec of dd writing 256 MiB to EOF through shim+FUSE), %.0f MB/s reading the finished log through FUSE, %.0f MB/s reading the same bytes from the plain file: live/plain = %.2f",
		mbps(live), mbps(after), mbps(plain), mbps(live)/mbps(plain)))
}

// readAllCount reads the file at path to EOF with 1 MiB reads, as a program
// reading a stream would, and returns how many bytes it got.
func readAllCount(b *testing.B, path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	var total int64
	for {
		n, err := f.Read(buf)
		total += int64(n)
		if err == io.EOF {
			return total
		}
		if err != nil {
			b.Fatalf("read %s: %v", path, err)
		}
	}
}
