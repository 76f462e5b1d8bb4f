package fsys

import (
	"bazil.org/fuse/fs"
	"encoding/json"
	"sort"
	"strconv"
	"strings"

	"github.com/ctrfs/ctrfs/runtime"
)

// containerDir is /ID: ctl, state, status, pid, pids, labels, bundle,
// runtime, config.json and processes/.
type containerDir struct {
	staticDir
	c   *runtime.Container
	ctl *ctlFile
}

func newContainerDir(f *FS, c *runtime.Container) *containerDir {
	d := &containerDir{c: c}
	d.ctl = &ctlFile{verbs: containerVerbs, run: func(cmd command) error { return runContainer(f.rt, c, cmd) }, lastErr: &lastError{}}
	d.entries = map[string]fs.Node{
		"ctl":   d.ctl,
		"state": newROFile(func() ([]byte, error) { return text(string(c.State())), nil }),
		"status": newROFile(func() ([]byte, error) {
			b, err := json.Marshal(c.Status())
			return append(b, '\n'), err
		}),
		"pid": newROFile(func() ([]byte, error) { return text(pidText(c.Pid())), nil }),
		"pids": newROFile(func() ([]byte, error) {
			pids, err := c.Pids()
			var sb strings.Builder
			for _, p := range pids {
				sb.WriteString(strconv.Itoa(p) + "\n")
			}
			return []byte(sb.String()), err
		}),
		"labels":      newROFile(func() ([]byte, error) { return labelsText(c.Labels()), nil }),
		"bundle":      newROFile(func() ([]byte, error) { return text(c.Bundle()), nil }),
		"runtime":     newROFile(func() ([]byte, error) { return text(c.RuntimeName()), nil }),
		"config.json": newROFile(func() ([]byte, error) { return c.Spec(), nil }),
		"processes": &staticDir{entries: map[string]fs.Node{
			"init": newProcessDir(c.Init()),
		}},
	}
	return d
}

// runContainer carries out one command written to a container's ctl.
func runContainer(rt *runtime.Runtime, c *runtime.Container, cmd command) error {
	switch cmd.verb {
	case "start":
		return c.Start()
	case "pause":
		return c.Pause()
	case "resume":
		return c.Resume()
	case "kill":
		return c.Kill(cmd.signal, cmd.all)
	case "delete":
		return rt.Delete(c, cmd.force)
	}
	return runtime.Errorf(runtime.KindInvalid, "unknown verb %q", cmd.verb)
}

// newProcessDir is processes/NAME: pid, state, exit, spec.
func newProcessDir(p *runtime.Process) *staticDir {
	return &staticDir{entries: map[string]fs.Node{
		"pid":   newROFile(func() ([]byte, error) { return text(pidText(p.Pid())), nil }),
		"state": newROFile(func() ([]byte, error) { return text(string(p.State())), nil }),
		"exit":  newROFile(func() ([]byte, error) { return text(p.ExitText()), nil }),
		"spec":  newROFile(func() ([]byte, error) { return append(append([]byte(nil), p.Spec()...), '\n'), nil }),
	}}
}

func pidText(pid int) string {
	if pid <= 0 {
		return ""
	}
	return strconv.Itoa(pid)
}

func labelsText(labels map[string]string) []byte {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	for _, k := range keys {
		sb.WriteString(k + "=" + labels[k] + "\n")
	}
	return []byte(sb.String())
}
