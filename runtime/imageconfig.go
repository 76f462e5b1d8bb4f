package runtime

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ctrfs/ctrfs/images"
	specs "github.com/opencontainers/runtime-spec/specs-go"
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
	if len(req.Env) > 0 || req.Workdir != "" || len(req.Args) > 0 {
		return Errorf(KindInvalid, "--config: the caller's config.json gives the process: --env, --workdir and a command are refused with it")
	}
	return nil
}

// callerSpec reads the caller's config.json (a regular file, not through a
// symlink, at most maxCallerConfig bytes) and returns it with root.path set
// to rootfs (relative to the bundle) and root.readonly kept as the caller
// said. A user (--user) is resolved in the image's files (mounted at
// rootPath) and replaces process.user's uid and gid; its gid and (with
// imageGroups) its groups are added to the caller's additionalGids.
func callerSpec(path, rootfs, rootPath, user string, imageGroups bool) ([]byte, error) {
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
	if user != "" {
		p, err := withUser(doc["process"], rootPath, user, imageGroups)
		if err != nil {
			return nil, err
		}
		doc["process"] = p
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// withUser is the caller's process (raw JSON) with the user resolved in
// the image's /etc/passwd and /etc/group (read inside rootPath, bounded,
// as for --user without --config): every other field stays as written.
// The primary gid leads additionalGids, as containerd puts it (so the
// process's group list holds it, as after a login), then the image's
// groups of the user (imageGroups), then the caller's.
func withUser(rawProcess json.RawMessage, rootPath, user string, imageGroups bool) (json.RawMessage, error) {
	var proc map[string]json.RawMessage
	if err := json.Unmarshal(rawProcess, &proc); err != nil {
		return nil, Errorf(KindInvalid, "--config: process: %v", err)
	}
	var given specs.User
	if u, ok := proc["user"]; ok && string(u) != "null" {
		if err := json.Unmarshal(u, &given); err != nil {
			return nil, Errorf(KindInvalid, "--config: process.user: %v", err)
		}
	}
	u, err := images.ResolveUser(rootPath, user, imageGroups)
	if err != nil {
		return nil, imageError("--user", err)
	}
	gids := []uint32{u.GID}
	for _, g := range slices.Concat(u.AdditionalGids, given.AdditionalGids) {
		if !slices.Contains(gids, g) {
			gids = append(gids, g)
		}
	}
	u.AdditionalGids = gids
	u.Umask, u.Username = given.Umask, given.Username
	proc["user"], _ = json.Marshal(u)
	return json.Marshal(proc)
}
