package runtime

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctrfs/ctrfs/shim/proto"
	"github.com/sirupsen/logrus"
)

// A daemon loads process directories by their protocol version: one
// written before versions (today's shims under an upgraded daemon) is read
// as version 1; one of a newer version is not read at all, and says why.
func TestProcessProtocolVersion(t *testing.T) {
	for _, c := range []struct {
		name   string
		config string // process.json as the starting daemon wrote it
		ok     bool
	}{
		{"version 1 (no version field)", `{"id":"c","process":"init","action":"create","bundle":"/b","runtime":"/r","runtime_root":"/rr","log_max_size":8}`, true},
		{"version 2", `{"version":2,"id":"c","process":"init","action":"create","bundle":"/b","runtime":"/r","runtime_root":"/rr","log_max_size":8}`, true},
		{"a newer version", `{"version":99,"id":"c","process":"init","action":"create","bundle":"/b","runtime":"/r","runtime_root":"/rr","log_max_size":8,"new":"field"}`, false},
	} {
		dir := t.TempDir()
		for name, content := range map[string]string{
			proto.ConfigFile:     c.config,
			proto.PidFile:        "123 456\n",
			proto.ExitStatusFile: `{"status":3,"exited_at":"2024-01-02T03:04:05Z"}`,
		} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		var logged bytes.Buffer
		logger := logrus.New()
		logger.SetOutput(&logged)
		ct := &Container{id: "c", log: logger}
		// As load.go reads it.
		var cfg proto.Config
		if err := readJSON(filepath.Join(dir, proto.ConfigFile), &cfg); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		p := newProcess(ct, initProcess, dir, nil, cfg)
		perr := p.readPidFile()
		rec, xerr := p.readExitFile()
		if c.ok {
			if perr != nil || p.Pid() != 123 || xerr != nil || rec == nil || rec.Status != 3 {
				t.Errorf("%s: pid %d, %v; exit %+v, %v", c.name, p.Pid(), perr, rec, xerr)
			}
			if logged.Len() != 0 {
				t.Errorf("%s: logged %q", c.name, logged.String())
			}
			continue
		}
		if perr == nil || xerr == nil || p.Pid() != 0 || rec != nil {
			t.Errorf("%s: read anyway: pid %d, %v; exit %+v, %v", c.name, p.Pid(), perr, rec, xerr)
		}
		if perr != nil && !strings.Contains(perr.Error(), "version 99") {
			t.Errorf("%s: error %q does not name the version", c.name, perr)
		}
		if !strings.Contains(logged.String(), "level=error") || !strings.Contains(logged.String(), "version 99") {
			t.Errorf("%s: logged %q; want an error naming the version", c.name, logged.String())
		}
		// load.go turns the error into a stopped container, exit unknown.
		if d := damaged(perr); !d.Unknown || !strings.Contains(d.Reason, "version 99") {
			t.Errorf("%s: damaged = %+v", c.name, d)
		}
	}
}

// launch's error keeps CRIU's reason apart; Create reads it back whole.
func TestRestoreFailure(t *testing.T) {
	rep, err := proto.ParseReport(proto.MarshalReport(proto.Report{Error: "criu failed:\n type RESTORE", CRIU: "x; y"}, proto.Version))
	if err != nil {
		t.Fatal(err)
	}
	e := reportFailure(rep)
	if msg, criu := restoreFailure(e); msg != "criu failed: type RESTORE" || criu != "x; y" {
		t.Errorf("restoreFailure = %q, %q", msg, criu)
	}
	if KindOf(e) != KindRuntime || e.Error() != "criu failed: type RESTORE" {
		t.Errorf("reportError: kind %d, %q", KindOf(e), e.Error())
	}
	if msg, criu := restoreFailure(errString("shim exited without a report")); msg != "shim exited without a report" || criu != "" {
		t.Errorf("restoreFailure of another error = %q, %q", msg, criu)
	}
}
