package tests

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// TestConcurrentRuns runs 10 containers from 10 concurrent writers, each
// writing its own `run` to the root ctl; all must run, be listed and be
// deletable (concurrently too), and be gone after.
func TestConcurrentRuns(t *testing.T) {
	const n = 10
	d := startDaemon(t)
	b := demoBundle(t)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = newID(fmt.Sprintf("conc%d", i))
	}
	sort.Strings(ids)

	errs := make([]error, n)
	results := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, id := range ids {
		wg.Go(func() {
			<-start
			results[i], errs[i] = transact(d.path("ctl"), []byte("run "+id+" "+b+"\n"))
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: run %s: %v (result %q)", i, ids[i], err, results[i])
		} else if !strings.HasPrefix(results[i], "ok: run") {
			t.Errorf("writer %d: result %q, want \"ok: run...\"", i, results[i])
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	for _, id := range ids {
		d.waitState(id, "running")
	}
	if got := d.containers(); !reflect.DeepEqual(got, ids) {
		t.Errorf("ls = %v, want %v", got, ids)
	}
	if got := d.runcIDs(); !reflect.DeepEqual(got, ids) {
		t.Errorf("runc list = %v, want %v", got, ids)
	}
	pids := map[int]string{}
	for _, id := range ids {
		pid := d.initPid(id)
		if other, ok := pids[pid]; ok {
			t.Errorf("%s and %s have the same init pid %d", id, other, pid)
		}
		pids[pid] = id
	}

	// Delete all of them, concurrently, with delete --force.
	for i, id := range ids {
		wg.Go(func() {
			results[i], errs[i] = transact(d.path("ctl"), []byte("delete "+id+" --force\n"))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("delete --force %s: %v (result %q)", ids[i], err, results[i])
		}
	}
	if got := d.containers(); len(got) != 0 {
		t.Errorf("ls after deleting all = %v, want none", got)
	}
	for _, id := range ids {
		checkGone(t, d, id)
	}
	for pid, id := range pids {
		if processAlive(pid, 0) {
			t.Errorf("init %d of %s still alive after delete --force", pid, id)
		}
	}
	if got := d.stateDirs(); len(got) != 0 {
		t.Errorf("state dir holds %v after deleting all", got)
	}
}

// TestConcurrentSameID races 10 writers creating the same id: exactly one
// wins, the others get EEXIST, and one container exists.
func TestConcurrentSameID(t *testing.T) {
	const n = 10
	d := startDaemon(t)
	b := demoBundle(t)
	id := newID("same")

	errs := make([]error, n)
	results := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], errs[i] = transact(d.path("ctl"), []byte("run "+id+" "+b+"\n"))
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, syscall.EEXIST):
			if !strings.Contains(results[i], "EEXIST") {
				t.Errorf("writer %d: EEXIST with result %q, want the EEXIST text", i, results[i])
			}
		default:
			t.Errorf("writer %d: %v (result %q), want success or EEXIST", i, err, results[i])
		}
	}
	if ok != 1 {
		t.Errorf("%d writers succeeded, want exactly 1", ok)
	}
	if got := d.containers(); !slices.Equal(got, []string{id}) {
		t.Errorf("ls = %v, want [%s]", got, id)
	}
	if got := d.runcIDs(); !slices.Equal(got, []string{id}) {
		t.Errorf("runc list = %v, want [%s]", got, id)
	}
	d.waitState(id, "running")
	d.forceDelete(id)
	checkGone(t, d, id)
	if _, err := os.Stat(d.path(id)); err == nil {
		t.Errorf("%s still exists", id)
	}
}
