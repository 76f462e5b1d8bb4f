package cri

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// CheckpointContainer saves a running container with CRIU through the
// tree's `checkpoint NAME --dir DIR` (the container keeps running) and
// exports it as an uncompressed tar archive at the request's location, as
// containerd and CRI-O do, laid out as theirs: checkpoint/ (CRIU's images,
// its dump.log, ctrfs's config.json of the checkpoint), spec.dump (the OCI
// spec the container runs, ID/config.json) and config.dump (what the CRI
// knows of it: id, pod, name, image, labels, annotations). The container's
// writes to its rootfs are not in it. The archive is written beside its
// final name and renamed into place, and the checkpoint's directory is
// removed: a failure leaves neither (CRIU's reason is the error's text).
// The tree bounds the order (60 s); the request's timeout is not used.
func (s *Server) CheckpointContainer(ctx context.Context, req *runtimeapi.CheckpointContainerRequest) (*runtimeapi.CheckpointContainerResponse, error) {
	c, err := s.find("container", req.GetContainerId())
	if err != nil {
		return nil, err
	}
	loc := req.GetLocation()
	if loc == "" || !filepath.IsAbs(loc) {
		return nil, status.Errorf(codes.InvalidArgument, "checkpoint location %q: want the absolute path of the archive to write", loc)
	}
	if err := checkWord("checkpoint location", loc); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if c.St.State != "running" && c.St.State != "paused" {
		return nil, status.Errorf(codes.FailedPrecondition, "container %s is %s: only a running container can be checkpointed", c.ID, c.St.State)
	}
	spec, err := s.t.Read(c.ID, "config.json")
	if err != nil {
		return nil, treeStatus("checkpoint: config.json", err)
	}
	dir, err := os.MkdirTemp(filepath.Join(s.cfg.StateDir, "tmp"), "checkpoint-*")
	if err != nil {
		return nil, status.Errorf(codes.Internal, "checkpoint: %v", err)
	}
	defer os.RemoveAll(dir)
	if err := s.t.Ctl(ctlLine("checkpoint", "cri", "--dir", dir), c.ID, "ctl"); err != nil {
		return nil, treeStatus("checkpoint", err)
	}
	cfg, err := json.MarshalIndent(map[string]any{
		"id": c.ID, "pod": c.M.Pod, "name": c.M.Name, "attempt": c.M.Attempt, "image": c.M.Image, "image_ref": c.M.ImageRef,
		"labels": c.M.Labels, "annotations": c.M.Annotations, "log_path": c.M.LogPath, "runtime": "ctrfs",
	}, "", "  ")
	if err != nil {
		return nil, status.Errorf(codes.Internal, "checkpoint: %v", err)
	}
	if err := writeCheckpointArchive(loc, filepath.Join(dir, "cri"), []archiveFile{{"config.dump", cfg}, {"spec.dump", spec}}); err != nil {
		return nil, status.Errorf(codes.Internal, "checkpoint archive %s: %v", loc, err)
	}
	return &runtimeapi.CheckpointContainerResponse{}, nil
}

// archiveFile is a file of the archive beside checkpoint/.
type archiveFile struct {
	name string
	data []byte
}

// writeCheckpointArchive writes the tar archive at loc: the directory cp as
// checkpoint/, then files. It is made as a temporary file of loc's
// directory and renamed into place once whole.
func writeCheckpointArchive(loc, cp string, files []archiveFile) (err error) {
	f, err := os.CreateTemp(filepath.Dir(loc), "."+filepath.Base(loc)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(cp, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(cp, p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		// CRIU writes directories and regular files only; anything else
		// (a link) is not followed, not archived.
		if !fi.IsDir() && !fi.Mode().IsRegular() {
			return nil
		}
		hdr, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(filepath.Join("checkpoint", rel))
		if fi.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil || fi.IsDir() {
			return err
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		if n, err := io.Copy(tw, src); err != nil || n != fi.Size() {
			return fmt.Errorf("%s: %d of %d bytes: %v", rel, n, fi.Size(), err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, af := range files {
		if err := tw.WriteHeader(&tar.Header{Name: af.name, Mode: 0o600, Size: int64(len(af.data)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(af.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), loc)
}
