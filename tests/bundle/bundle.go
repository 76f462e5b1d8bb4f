// Package bundle makes OCI bundles for the end-to-end tests and the demo:
// a root filesystem of a static busybox and a config.json made by
// `runc spec`, then edited through the runtime-spec types.
package bundle

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// BusyboxPath is the static busybox copied into every bundle.
const BusyboxPath = "/bin/busybox"

// Busybox makes an OCI bundle in dir (created if missing): dir/rootfs with
// bin/busybox and one symlink per applet, plus the directories proc, sys,
// dev, tmp and etc; and dir/config.json made by `runc spec` with a process
// that runs args without a terminal on a writable root.
func Busybox(dir string, args ...string) error {
	if len(args) == 0 {
		return fmt.Errorf("bundle: no args for the container's process")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp", "etc"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.Chmod(filepath.Join(rootfs, "tmp"), 0o1777); err != nil {
		return err
	}
	bb := filepath.Join(rootfs, "bin", "busybox")
	if err := copyFile(BusyboxPath, bb, 0o755); err != nil {
		return err
	}
	out, err := exec.Command(BusyboxPath, "--list").Output()
	if err != nil {
		return fmt.Errorf("bundle: %s --list: %w", BusyboxPath, err)
	}
	for _, name := range strings.Fields(string(out)) {
		if name == "busybox" || strings.Contains(name, "/") {
			continue
		}
		link := filepath.Join(rootfs, "bin", name)
		if err := os.Symlink("busybox", link); err != nil && !os.IsExist(err) {
			return err
		}
	}
	// /etc/passwd and /etc/group keep `id`, `ps` and friends quiet.
	for name, content := range map[string]string{
		"passwd": "root:x:0:0:root:/root:/bin/sh\n",
		"group":  "root:x:0:\n",
	} {
		if err := os.WriteFile(filepath.Join(rootfs, "etc", name), []byte(content), 0o644); err != nil {
			return err
		}
	}

	config := filepath.Join(dir, "config.json")
	if err := os.Remove(config); err != nil && !os.IsNotExist(err) {
		return err
	}
	if out, err := exec.Command("runc", "spec", "--bundle", dir).CombinedOutput(); err != nil {
		return fmt.Errorf("bundle: runc spec --bundle %s: %v: %s", dir, err, strings.TrimSpace(string(out)))
	}
	data, err := os.ReadFile(config)
	if err != nil {
		return err
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return fmt.Errorf("bundle: %s: %w", config, err)
	}
	if spec.Process == nil {
		spec.Process = &specs.Process{}
	}
	spec.Process.Terminal = false
	spec.Process.Args = append([]string(nil), args...)
	if spec.Root == nil {
		spec.Root = &specs.Root{}
	}
	spec.Root.Path = "rootfs"
	spec.Root.Readonly = false
	return writeSpec(config, &spec)
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(tmp)
		return err
	}
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// Edit changes the config.json of the bundle in dir with edit.
func Edit(dir string, edit func(*specs.Spec)) error {
	config := filepath.Join(dir, "config.json")
	data, err := os.ReadFile(config)
	if err != nil {
		return err
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return fmt.Errorf("bundle: %s: %w", config, err)
	}
	edit(&spec)
	return writeSpec(config, &spec)
}

func writeSpec(config string, spec *specs.Spec) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "\t")
	if err := enc.Encode(spec); err != nil {
		return err
	}
	return os.WriteFile(config, buf.Bytes(), 0o644)
}
