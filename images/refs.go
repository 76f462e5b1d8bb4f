package images

import (
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Ref is a normalised image reference, as docker normalises them: "busybox"
// is docker.io/library/busybox:latest. Its String is the form shown to users
// and the key of the index: docker.io rather than go-containerregistry's
// index.docker.io, a tag or a digest always present.
type Ref struct {
	name.Reference
}

// ParseRef parses and normalises a reference.
func ParseRef(s string) (Ref, error) {
	if s == "" || strings.ContainsAny(s, " \t\n\x00") {
		return Ref{}, errorf(ErrInvalid, "bad image reference %q", s)
	}
	r, err := name.ParseReference(s)
	if err != nil {
		return Ref{}, wrapf(ErrInvalid, err, "bad image reference %q", s)
	}
	return Ref{r}, nil
}

// String is the display form: docker.io/library/busybox:latest.
func (r Ref) String() string {
	if r.Reference == nil {
		return ""
	}
	reg := r.Context().RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	sep := ":"
	if _, ok := r.Reference.(name.Digest); ok {
		sep = "@"
	}
	return reg + "/" + r.Context().RepositoryStr() + sep + r.Identifier()
}

// Registry is the registry's host name as mirrors and the insecure list name
// it: docker.io for Docker Hub.
func (r Ref) Registry() string {
	reg := r.Context().RegistryStr()
	if reg == name.DefaultRegistry {
		return "docker.io"
	}
	return reg
}

// isDigest reports whether s names an image by its manifest digest
// ("sha256:<64 hex>"), as the store's own names do.
func isDigest(s string) bool {
	hex, ok := strings.CutPrefix(s, "sha256:")
	return ok && isHex64(hex)
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
