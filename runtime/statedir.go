package runtime

import (
	"encoding/json"
	"os"
	"time"

	"github.com/ctrfs/ctrfs/internal/atomicfile"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The state directory is the single source of truth: everything the daemon
// knows can be rebuilt from it (see docs/architecture.md).
//
//	<state>/<id>/state.json      containerRecord, written last at create: no
//	                             state.json means a create that never finished
//	<state>/<id>/config.json     the bundle's spec as it was at create
//	<state>/<id>/<proc>/...      one directory per process, the shim's (shim/proto)
//	<state>/runc/                the runtime's --root
//	<state>/lock                 flock of the daemon that owns the directory
const (
	recordFile     = "state.json"
	specCopyFile   = "config.json"
	runtimeRootDir = "runc"
	lockFile       = "lock"
	initProcess    = "init"
)

// containerRecord is state.json: what a container was created with, and the
// few facts about its life that cannot be read back from elsewhere.
type containerRecord struct {
	ID          string            `json:"id"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Runtime     string            `json:"runtime"`
	RuntimePath string            `json:"runtime_path"`
	RuntimeArgs []string          `json:"runtime_args,omitempty"`
	NoPivot     bool              `json:"no_pivot,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	OCIVersion  string            `json:"oci_version"`
	Created     time.Time         `json:"created"`
	Started     *time.Time        `json:"started,omitempty"`
	// StateChanged is the state's last change (the state file's mtime);
	// Updated the last update's (status's).
	StateChanged *time.Time `json:"state_changed,omitempty"`
	Updated      *time.Time `json:"updated,omitempty"`
	// Resources are the bundle's linux.resources with every update since
	// merged in: the limits as ctrfs applied them.
	Resources *specs.LinuxResources `json:"resources,omitempty"`
	// BundleID is the bundle directory's device and inode at create:
	// where ctrfs works in the bundle again, it must be that directory.
	BundleID *fileID `json:"bundle_id,omitempty"`
	// RestoredFrom is the checkpoint the container was restored from.
	RestoredFrom string `json:"restored_from,omitempty"`
	// Image is the manifest digest of the image the container was run
	// from; its bundle is then <state>/<id>/bundle (runtime/image.go).
	Image string `json:"image,omitempty"`
	// LogMaxSize is the container's bound of output logs (create's
	// --log-max-size; 0: none); absent: the daemon's.
	LogMaxSize *int64 `json:"log_max_size,omitempty"`
}

// writeJSONAtomic writes a JSON document of the state directory so that a
// reader sees all or nothing (atomicfile.WriteFile, which the shim uses too).
func writeJSONAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o600)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
