package tests

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// TestReusedIDNeverShowsOldContainer: the kernel keeps container
// directories' entries (fewer LOOKUPs per read), so every delete must make
// it forget them. For each way to delete, a container's files are read
// (the entry is cached), it is deleted, the path must be gone at once, and
// a new container of the same id from another bundle must show its own
// bundle, pid and state, never the old one's.
func TestReusedIDNeverShowsOldContainer(t *testing.T) {
	d := startDaemon(t)
	oldBundle, newBundleDir := newBundle(t, "sleep", "1000"), newBundle(t, "sleep", "2000")
	deletes := map[string]func(id string){
		"root ctl delete --force": func(id string) { d.mustCtl("delete " + id + " --force\n") },
		"own ctl delete --force":  func(id string) { d.mustCtl("delete --force\n", id) },
		"rmdir after the exit": func(id string) {
			d.mustCtl("kill KILL\n", id)
			d.waitState(id, "stopped")
			if err := os.Remove(d.path(id)); err != nil {
				t.Fatalf("rmdir %s: %v", id, err)
			}
		},
	}
	for how, del := range deletes {
		id := newID("reuse")
		for round := 0; round < 3; round++ {
			d.run(id, oldBundle)
			oldPid := d.initPid(id)
			if got := d.readTrim(id, "bundle"); got != oldBundle {
				t.Fatalf("%s: %s/bundle = %q, want %q", how, id, got, oldBundle)
			}
			del(id)
			if _, err := os.Stat(d.path(id, "state")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s: %s/state right after the delete: %v, want ENOENT", how, id, err)
			}
			d.run(id, newBundleDir)
			if got := d.readTrim(id, "bundle"); got != newBundleDir {
				t.Fatalf("%s: re-created %s/bundle = %q, want the new %q", how, id, got, newBundleDir)
			}
			if pid := d.initPid(id); pid == oldPid {
				t.Fatalf("%s: re-created %s/pid = %d, the old container's", how, id, pid)
			}
			if got := d.read(id, "config.json"); !strings.Contains(got, `"2000"`) {
				t.Fatalf("%s: re-created %s/config.json is not the new bundle's: %s", how, id, got)
			}
			d.mustCtl("delete " + id + " --force\n")
		}
	}
}
