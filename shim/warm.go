package shim

import (
	"encoding/json"
	"io"
	"os"

	"github.com/ctrfs/ctrfs/shim/proto"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
)

// warmUp does once, ahead of need, what a shim's first run would otherwise
// do on the path of a create or an exec (a trace of an exec showed ~1 ms of
// it between the spare learning its directory and runc starting, and
// after runc):
//   - os/exec's probe of pidfd support, a test clone, run at the first
//     start of a process; os.FindProcess runs it too;
//   - encoding/json's codecs for each type, built by reflection at their
//     first use: the config, the exec's process spec (decoded by the shim,
//     encoded again by go-runc), the report and the exit status;
//   - logrus's JSON formatter.
//
// It changes nothing a run depends on.
func warmUp() {
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		p.Release()
	}
	ten := uint64(10)
	spec := specs.Process{
		Terminal: true, ConsoleSize: &specs.Box{}, User: specs.User{AdditionalGids: []uint32{1}},
		Args: []string{"a"}, Env: []string{"A=1"}, Cwd: "/",
		Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL"}},
		Rlimits:      []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: ten, Soft: ten}},
		IOPriority:   &specs.LinuxIOPriority{}, Scheduler: &specs.Scheduler{},
		ExecCPUAffinity: &specs.CPUAffinity{},
	}
	raw, _ := json.Marshal(&spec)
	_ = json.Unmarshal(raw, &specs.Process{})
	cfg := proto.Config{ID: "a", Restore: &proto.Restore{}, Spec: raw}
	raw, _ = json.Marshal(&cfg)
	_ = json.Unmarshal(raw, &proto.Config{})
	_, _ = json.Marshal(proto.Report{})
	_, _ = json.Marshal(proto.ExitStatus{})
	l := logrus.New()
	l.SetOutput(io.Discard)
	l.SetFormatter(&logrus.JSONFormatter{})
	l.WithFields(logrus.Fields{"id": "a", "pid": 1}).Info("warm")
}
