package cri

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/name"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The ImageService over /mnt/ctr/images: `list` and the image directories
// are read, `ctl` takes pull and remove. An image's CRI id is its manifest
// digest (sha256:HEX), the name of its directory and what `--image` takes.

// normalizeRef writes ref as the image store shows references
// (docker.io/library/busybox:latest).
func normalizeRef(ref string) (string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", err
	}
	reg := r.Context().RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	repo := reg + "/" + r.Context().RepositoryStr()
	if d, ok := r.(name.Digest); ok {
		return repo + "@" + d.DigestStr(), nil
	}
	return repo + ":" + r.Identifier(), nil
}

// digestDir tells whether s names an image directory: sha256:HEX, or the
// bare HEX crictl shows.
func (s *Server) digestDir(ref string) (string, bool) {
	d := ref
	if !strings.HasPrefix(d, "sha256:") {
		if len(d) != 64 || strings.Trim(d, "0123456789abcdef") != "" {
			return "", false
		}
		d = "sha256:" + d
	}
	if st, err := os.Stat(s.t.path("images", d)); err == nil && st.IsDir() {
		return d, true
	}
	return "", false
}

// listRefs reads images/list: reference → digest.
func (s *Server) listRefs() map[string]string {
	b, err := s.t.Read("images", "list")
	if err != nil {
		return nil
	}
	out := map[string]string{}
	for i, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 4 {
			continue
		}
		out[f[3]] = f[0]
	}
	return out
}

// resolveImage is the digest of the image ref names ("" when there is none).
func (s *Server) resolveImage(ref string) string {
	if d, ok := s.digestDir(ref); ok {
		return d
	}
	n, err := normalizeRef(ref)
	if err != nil {
		return ""
	}
	if d, ok := s.listRefs()[n]; ok {
		return d
	}
	if _, dg, ok := strings.Cut(n, "@"); ok {
		if d, ok := s.digestDir(dg); ok {
			return d
		}
	}
	return ""
}

// image reads the CRI view of the image of digest.
func (s *Server) image(digest string) (*runtimeapi.Image, error) {
	refs, err := s.t.Read("images", digest, "refs")
	if err != nil {
		return nil, err
	}
	im := &runtimeapi.Image{Id: digest, Spec: &runtimeapi.ImageSpec{Image: digest}}
	seen := map[string]bool{}
	for _, r := range strings.Fields(string(refs)) {
		repo, _, digested := strings.Cut(r, "@")
		if !digested {
			im.RepoTags = append(im.RepoTags, r)
			if i := strings.LastIndexByte(r, ':'); i > strings.LastIndexByte(r, '/') {
				repo = r[:i]
			}
		}
		if !seen[repo] {
			seen[repo] = true
			im.RepoDigests = append(im.RepoDigests, repo+"@"+digest)
		}
	}
	if b, err := s.t.Read("images", digest, "size"); err == nil {
		im.Size, _ = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	}
	var ic imageConfig
	if err := s.t.ReadJSON(&ic, "images", digest, "config.json"); err == nil {
		u, _, _ := strings.Cut(ic.Config.User, ":")
		if n, err := strconv.ParseInt(u, 10, 64); err == nil {
			im.Uid = &runtimeapi.Int64Value{Value: n}
		} else {
			im.Username = u
		}
	}
	return im, nil
}

// ListImages lists every image of the store.
func (s *Server) ListImages(ctx context.Context, req *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	ents, err := os.ReadDir(s.t.path("images"))
	if err != nil {
		return nil, treeStatus("list images", err)
	}
	want := ""
	if f := req.GetFilter().GetImage().GetImage(); f != "" {
		if want = s.resolveImage(f); want == "" {
			return &runtimeapi.ListImagesResponse{}, nil
		}
	}
	resp := &runtimeapi.ListImagesResponse{}
	for _, e := range ents {
		d := e.Name()
		if !strings.HasPrefix(d, "sha256:") || (want != "" && d != want) {
			continue
		}
		if im, err := s.image(d); err == nil {
			resp.Images = append(resp.Images, im)
		}
	}
	return resp, nil
}

// ImageStatus: a missing image is an empty answer, not an error.
func (s *Server) ImageStatus(ctx context.Context, req *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	d := s.resolveImage(req.GetImage().GetImage())
	if d == "" {
		return &runtimeapi.ImageStatusResponse{}, nil
	}
	im, err := s.image(d)
	if err != nil {
		return &runtimeapi.ImageStatusResponse{}, nil
	}
	return &runtimeapi.ImageStatusResponse{Image: im}, nil
}

// PullImage pulls through images/ctl; the request's credentials go in a
// docker config.json of its own (0600, in the state dir's tmp/), given
// as `pull REF --auth-file PATH` and removed after.
func (s *Server) PullImage(ctx context.Context, req *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, status.Error(codes.InvalidArgument, "no image given")
	}
	if err := checkWord("image", ref); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if d, ok := s.digestDir(ref); ok {
		return &runtimeapi.PullImageResponse{ImageRef: d}, nil
	}
	words := []string{ref}
	if a := req.GetAuth(); a != nil && (a.Username != "" || a.Auth != "" || a.IdentityToken != "" || a.RegistryToken != "") {
		path, err := s.writeAuthFile(ref, a)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "pull %s: credentials: %v", ref, err)
		}
		defer os.Remove(path)
		words = append(words, "--auth-file", path)
	}
	if err := s.t.Ctl(ctlLine("pull", words...), "images", "ctl"); err != nil {
		return nil, treeStatus("pull "+ref, err)
	}
	d := s.resolveImage(ref)
	if d == "" {
		return nil, status.Errorf(codes.Internal, "pull %s: pulled, but not found in images/list", ref)
	}
	return &runtimeapi.PullImageResponse{ImageRef: d}, nil
}

// RemoveImage removes an image by reference, or every reference of it by
// id; a missing image is fine (idempotent, as the CRI wants).
func (s *Server) RemoveImage(ctx context.Context, req *runtimeapi.RemoveImageRequest) (*runtimeapi.RemoveImageResponse, error) {
	ref := req.GetImage().GetImage()
	target := ref
	if d, ok := s.digestDir(ref); ok {
		target = d
	} else if s.resolveImage(ref) == "" {
		return &runtimeapi.RemoveImageResponse{}, nil
	}
	if err := checkWord("image", target); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if err := s.t.Ctl(ctlLine("remove", target), "images", "ctl"); err != nil && !isErrno(err, syscall.ENOENT) {
		return nil, treeStatus("remove image "+ref, err)
	}
	return &runtimeapi.RemoveImageResponse{}, nil
}

// ImageFsInfo: the file system of the daemon's image store, and what the
// images' unpacked layers take of it.
func (s *Server) ImageFsInfo(ctx context.Context, req *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	var used uint64
	seen := map[string]bool{}
	ents, _ := os.ReadDir(s.t.path("images"))
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "sha256:") {
			continue
		}
		b, err := s.t.Read("images", e.Name(), "layers")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) < 3 || seen[f[0]] {
				continue
			}
			seen[f[0]] = true
			n, _ := strconv.ParseUint(f[2], 10, 64)
			used += n
		}
	}
	var inodes uint64
	var sfs unix.Statfs_t
	if unix.Statfs(s.cfg.ImageDir, &sfs) == nil {
		inodes = sfs.Files - sfs.Ffree
	}
	fs := &runtimeapi.FilesystemUsage{
		Timestamp:  nowNano(),
		FsId:       &runtimeapi.FilesystemIdentifier{Mountpoint: s.cfg.ImageDir},
		UsedBytes:  &runtimeapi.UInt64Value{Value: used},
		InodesUsed: &runtimeapi.UInt64Value{Value: inodes},
	}
	return &runtimeapi.ImageFsInfoResponse{ImageFilesystems: []*runtimeapi.FilesystemUsage{fs}}, nil
}

// writeAuthFile writes a's credentials as a docker config.json for the
// registry of ref (and a's server_address), and returns its path.
func (s *Server) writeAuthFile(ref string, a *runtimeapi.AuthConfig) (string, error) {
	entry := map[string]string{"auth": a.Auth, "username": a.Username, "password": a.Password,
		"identitytoken": a.IdentityToken, "registrytoken": a.RegistryToken}
	auths := map[string]map[string]string{registryOf(ref): entry}
	if sa := a.ServerAddress; sa != "" {
		auths[sa] = entry
	}
	data, err := json.Marshal(map[string]any{"auths": auths})
	if err != nil {
		return "", err
	}
	return s.writeTemp(data) // 0600: os.CreateTemp's mode
}

// registryOf is the registry host of an image reference, as docker names
// it: the first path element when it looks like a host, else Docker Hub.
func registryOf(ref string) string {
	first, _, ok := strings.Cut(ref, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first
	}
	return "index.docker.io"
}
