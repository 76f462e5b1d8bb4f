package runtime

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// A container made with `create ID --image REF --config PATH` runs the
// image's layers with an OCI spec the caller wrote whole (a CRI server, an
// orchestrator that knows its namespaces, mounts and limits): ctrfs takes
// that config.json as it is and sets only root.path to the image's rootfs.
// Every other byte of the caller's fields stays as written, so the caller's
// namespaces (joined by path, /proc/PID/ns/net), mounts, hooks and
// annotations reach the runtime untouched.

// maxCallerConfig bounds the caller's config.json, as the image store bounds
// its JSON documents.
const maxCallerConfig = 4 << 20

// checkCallerConfig checks the --config options of a create request.
func (req *CreateRequest) checkCallerConfig() error {
	if req.Config == "" {
		return nil
	}
	if req.Image == "" {
		return Errorf(KindInvalid, "--config is for --image only (a bundle has its own config.json)")
	}
	if !filepath.IsAbs(req.Config) || strings.ContainsRune(req.Config, 0) {
		return Errorf(KindInvalid, "--config %q: must be an absolute path", req.Config)
	}
	if len(req.Env) > 0 || req.Workdir != "" || req.User != "" || len(req.Args) > 0 {
		return Errorf(KindInvalid, "--config: the caller's config.json gives the process: --env, --workdir, --user and a command are refused with it")
	}
	return nil
}

// callerSpec reads the caller's config.json (a regular file, not through a
// symlink, at most maxCallerConfig bytes) and returns it with root.path set
// to rootfs (relative to the bundle) and root.readonly kept as the caller
// said.
func callerSpec(path, rootfs string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, Errorf(KindNotFound, "--config %s: no such file", path)
		}
		return nil, Errorf(KindInvalid, "--config %s: %v", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, Errorf(KindInvalid, "--config %s: not a regular file", path)
	}
	raw, err := io.ReadAll(io.LimitReader(f, maxCallerConfig+1))
	if err != nil {
		return nil, Errorf(KindInvalid, "--config %s: %v", path, err)
	}
	if len(raw) > maxCallerConfig {
		return nil, Errorf(KindTooBig, "--config %s: over %d bytes", path, maxCallerConfig)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil || doc == nil {
		return nil, Errorf(KindInvalid, "--config %s: not a JSON object: %v", path, err)
	}
	var root struct {
		Readonly bool `json:"readonly,omitempty"`
	}
	if r, ok := doc["root"]; ok && string(r) != "null" {
		if err := json.Unmarshal(r, &root); err != nil {
			return nil, Errorf(KindInvalid, "--config %s: root: %v", path, err)
		}
	}
	var proc struct {
		Args []string `json:"args"`
	}
	if p, ok := doc["process"]; !ok || json.Unmarshal(p, &proc) != nil || len(proc.Args) == 0 {
		return nil, Errorf(KindInvalid, "--config %s: process.args is missing or empty", path)
	}
	doc["root"], _ = json.Marshal(map[string]any{"path": rootfs, "readonly": root.Readonly})
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}
