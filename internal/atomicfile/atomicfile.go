// Package atomicfile writes files that a reader sees whole or not at all.
// The daemon and the shim both write the state directory with it; the
// image store writes its index with it.
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
	return write(path, data, perm, false)
}

// WriteFileDurable is WriteFile for a file that must outlive a crash of the
// kernel too (the image store's index, on a disk): the data and the
// directory entry are synced before it returns.
func WriteFileDurable(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, true)
}

func write(path string, data []byte, perm os.FileMode, durable bool) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	// Harmless once renamed (ENOENT); else it takes the temporary away.
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if err == nil && durable {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if durable {
		return SyncDir(filepath.Dir(path))
	}
	return nil
}

// SyncDir makes the entries of directory dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
