package runtime

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/sirupsen/logrus"
)

// TestCountOOMConcurrent: looks at the counter that run at once (the file
// is read outside the lock) count each kill once, and record the count.
func TestCountOOMConcurrent(t *testing.T) {
	dir := t.TempDir()
	events := filepath.Join(dir, "memory.events")
	quiet := logrus.New()
	quiet.SetOutput(io.Discard)
	c := &Container{id: "c", dir: dir, log: quiet, bus: newBus(100)}
	c.oom.efd, c.oom.path = -1, events
	c.oom.rec.Seen = 2 // counted by a previous daemon
	sub := c.bus.subscribe("", nil)
	defer sub.Close()
	for kills := 3; kills <= 20; kills++ {
		if err := os.WriteFile(events, []byte(fmt.Sprintf("low 0\nhigh 0\nmax 7\noom %d\noom_kill %d\n", kills, kills)), 0o600); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.countOOM(nil, true)
			}()
		}
		wg.Wait()
	}
	if got := c.OOMCount(); got != 18 {
		t.Errorf("OOMCount = %d, want 18", got)
	}
	var rec oomRecord
	if err := readJSON(filepath.Join(dir, oomFile), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Count != 18 || rec.Seen != 20 || rec.At == nil {
		t.Errorf("%s = %+v, want count 18, seen 20, a time", oomFile, rec)
	}
	if n := len(take(t, sub)); n != 18 {
		t.Errorf("%d oom events, want 18", n)
	}
}
