package images

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/ctrfs/ctrfs/internal/safeio"
	"github.com/google/go-containerregistry/pkg/authn"
)

// authFile is a docker-style config.json: only its "auths" section is read
// (credential helpers and credsStore are not run: the daemon is root and does
// not exec programs named by a file).
type authFile struct {
	Auths map[string]authEntry `json:"auths"`
}

type authEntry struct {
	Auth          string `json:"auth"`
	Username      string `json:"username"`
	Password      string `json:"password"`
	IdentityToken string `json:"identitytoken"`
	RegistryToken string `json:"registrytoken"`
}

// readAuthFile reads and parses the auth file at path under the hostile-file
// rules (docs/architecture.md "Hostile input"): a regular file of at most
// limit bytes, opened without blocking, its last component not a symlink
// (directories on the way are followed: the operator chose the path). A
// symlink, FIFO, device or directory is ErrInvalid, a larger file ErrTooBig.
func readAuthFile(ctx context.Context, path string, limit int64) (*authFile, error) {
	dir, err := safeio.OpenDir(-1, filepath.Dir(path), 0)
	if err != nil {
		return nil, wrapf(ErrInvalid, err, "registry auth file %s", path)
	}
	defer dir.Close()
	b, err := safeio.ReadFile(ctx, int(dir.Fd()), filepath.Base(path), safeio.Strict, limit)
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err // the path is said once, whole
	}
	switch {
	case errors.Is(err, safeio.ErrTooLarge):
		return nil, wrapf(ErrTooBig, err, "registry auth file %s", path)
	case errors.Is(err, safeio.ErrOutside):
		return nil, errorf(ErrInvalid, "registry auth file %s: is a symlink (not followed: name the file itself)", path)
	case err != nil:
		return nil, wrapf(ErrInvalid, err, "registry auth file %s", path)
	}
	var af authFile
	if err := json.Unmarshal(b, &af); err != nil {
		// encoding/json quotes the offending byte: of a password, maybe.
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, errorf(ErrInvalid, "registry auth file %s: not JSON (at byte %d)", path, se.Offset)
		}
		return nil, wrapf(ErrInvalid, err, "registry auth file %s", path)
	}
	for key, a := range af.Auths {
		if _, err := a.credentials(); err != nil {
			return nil, wrapf(ErrInvalid, err, "registry auth file %s: %q", path, key)
		}
	}
	return &af, nil
}

// keychain reads the store's auth file (at each pull, so a changed file
// needs no restart): the credentials of one pull.
// A pull's own file (pull REF --auth-file) takes the place of the store's.
func (s *Store) keychain(ctx context.Context, own string) (fileKeychain, error) {
	path := cmp.Or(own, s.opts.AuthFile)
	if path == "" {
		return fileKeychain{}, nil
	}
	af, err := readAuthFile(ctx, path, s.limits.JSONBytes)
	return fileKeychain{file: af}, err
}

// fileKeychain answers credentials from an authFile (nil: anonymous).
type fileKeychain struct {
	file *authFile
}

func (k fileKeychain) Resolve(res authn.Resource) (authn.Authenticator, error) {
	if k.file == nil {
		return authn.Anonymous, nil
	}
	if key, ok := k.file.lookup(res.RegistryStr()); ok {
		cfg, err := k.file.Auths[key].credentials()
		if err != nil {
			return nil, err
		}
		return authn.FromConfig(cfg), nil
	}
	return authn.Anonymous, nil
}

// has reports whether the file holds credentials for reg.
func (k fileKeychain) has(reg string) bool {
	if k.file == nil {
		return false
	}
	_, ok := k.file.lookup(reg)
	return ok
}

// lookup is the key of auths that holds reg's credentials, if any.
func (af *authFile) lookup(reg string) (string, bool) {
	// Docker Hub's credentials are filed under its old URL.
	keys := []string{reg, "https://" + reg, "http://" + reg}
	if reg == "index.docker.io" {
		keys = append(keys, "https://index.docker.io/v1/", "docker.io")
	}
	for key := range af.Auths {
		for _, want := range keys {
			if strings.TrimSuffix(key, "/") == strings.TrimSuffix(want, "/") {
				return key, true
			}
		}
	}
	return "", false
}

func (a authEntry) credentials() (authn.AuthConfig, error) {
	cfg := authn.AuthConfig{Username: a.Username, Password: a.Password,
		IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}
	if a.Auth != "" {
		dec, err := base64.StdEncoding.DecodeString(a.Auth)
		if err != nil {
			return cfg, errors.New("auth is not base64")
		}
		user, pass, ok := strings.Cut(string(dec), ":")
		if !ok {
			return cfg, errors.New("auth is not base64 of user:password")
		}
		cfg.Username, cfg.Password = user, pass
	}
	return cfg, nil
}

// CheckPullAuthFile checks a pull's own auth file (pull REF --auth-file):
// an absolute path to a regular file, not a symlink, readable by its owner
// only, as credentials are kept. The daemon reads it as root for whoever
// may write images/ctl, so it must not be a way to read other files.
func CheckPullAuthFile(path string) error {
	if !filepath.IsAbs(path) {
		return errorf(ErrInvalid, "--auth-file %q: must be an absolute path", path)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return wrapf(ErrNotFound, err, "--auth-file")
	}
	if !fi.Mode().IsRegular() {
		return errorf(ErrInvalid, "--auth-file %s: not a regular file (a symlink or special file is refused)", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return errorf(ErrInvalid, "--auth-file %s: mode %#o: credentials must be readable by their owner only (0600)", path, fi.Mode().Perm())
	}
	return nil
}
