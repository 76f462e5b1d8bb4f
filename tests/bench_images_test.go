package tests

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// BenchmarkRunImagePaired alternates, in every iteration, `run ID --image
// REF` (the bundle made in the state directory: the image held, an overlay
// mounted, config.json generated) and `run ID BUNDLE` of a ready bundle
// running the same program, each timed from the write until `state` reads
// running; deletes untimed. What it shows is what running from an image
// adds: an overlay mount and a spec, not a copy of the layers. (Pulling and
// unpacking is images' BenchmarkPull100MB.)
func BenchmarkRunImagePaired(b *testing.B) {
	d := startDaemon(b)
	bundle := demoBundle(b)
	d.mustCtl("import bench:v1 "+dockerSave(b, testImage(b, "bench"), "bench:v1")+"\n", "images")
	prefix := newID("bri")
	run := func(id, what string) time.Duration {
		start := time.Now()
		if err := d.write("run "+id+" "+what+"\n", "ctl"); err != nil {
			b.Fatalf("run %s: %v\n%s", id, err, d.read("ctl"))
		}
		if s, err := os.ReadFile(d.path(id, "state")); err != nil || string(s) != "running\n" {
			b.Fatalf("%s/state = %q, %v", id, s, err)
		}
		return time.Since(start)
	}
	script := "'" + demoScript + "'"
	var imageTime, bundleTime time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := fmt.Sprintf("%s-%d", prefix, i)
		var it, bt time.Duration
		timePair(i, func() { it = run("i"+id, "--image bench:v1 -- sh -c "+script) }, func() { bt = run("b"+id, bundle) })
		imageTime += it
		bundleTime += bt
		b.StopTimer()
		d.mustCtl("delete i" + id + " --force\ndelete b" + id + " --force\n")
		b.StartTimer()
	}
	b.StopTimer()
	im := float64(imageTime.Nanoseconds()) / float64(b.N) / 1e6
	bu := float64(bundleTime.Nanoseconds()) / float64(b.N) / 1e6
	b.ReportMetric(im, "image-ms/op")
	b.ReportMetric(bu, "bundle-ms/op")
	b.ReportMetric(im-bu, "extra-ms/op")
	recordSummary("run --image", fmt.Sprintf("run --image vs run of a ready bundle (paired): %.1f ms vs %.1f ms, +%.1f ms", im, bu, im-bu))
}
