// Package atomicfile writes files that a reader sees whole or not at all.
// The daemon and the shim both write the state directory with it.
package atomicfile

import (
	"os"
	"path/filepath"
)

// WriteFile writes data to path, with mode perm, through a temporary file
// in the same directory and a rename, so a reader (or a daemon restarted
// after a crash) sees all or nothing. There is no fsync: the rename guards
// against a crash of the daemon or a shim; fsync would guard only against
// a crash of the kernel, after which no container is left to describe
// (and /run is a tmpfs).
func WriteFile(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	// Harmless once renamed (ENOENT); else it takes the temporary away.
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
