package images

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
)

// authFile is a docker-style config.json: only its "auths" section is read
// (credential helpers and credsStore are not run: the daemon is root and does
// not exec programs named by a file).
type authFile struct {
	Auths map[string]struct {
		Auth          string `json:"auth"`
		Username      string `json:"username"`
		Password      string `json:"password"`
		IdentityToken string `json:"identitytoken"`
		RegistryToken string `json:"registrytoken"`
	} `json:"auths"`
}

// fileKeychain answers credentials from an authFile, read at each pull so a
// changed file needs no restart.
type fileKeychain struct {
	path  string
	limit int64
}

func (k fileKeychain) Resolve(res authn.Resource) (authn.Authenticator, error) {
	if k.path == "" {
		return authn.Anonymous, nil
	}
	f, err := os.Open(k.path)
	if err != nil {
		return nil, fmt.Errorf("auth file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, k.limit+1))
	if err != nil {
		return nil, fmt.Errorf("auth file: %w", err)
	}
	if int64(len(b)) > k.limit {
		return nil, errorf(ErrTooBig, "auth file %s: larger than %d bytes", k.path, k.limit)
	}
	var af authFile
	if err := json.Unmarshal(b, &af); err != nil {
		return nil, wrapf(ErrInvalid, err, "auth file %s", k.path)
	}
	reg := res.RegistryStr()
	// Docker Hub's credentials are filed under its old URL.
	keys := []string{reg, "https://" + reg, "http://" + reg}
	if reg == "index.docker.io" {
		keys = append(keys, "https://index.docker.io/v1/", "docker.io")
	}
	for key, a := range af.Auths {
		match := false
		for _, want := range keys {
			if strings.TrimSuffix(key, "/") == strings.TrimSuffix(want, "/") {
				match = true
			}
		}
		if !match {
			continue
		}
		cfg := authn.AuthConfig{Username: a.Username, Password: a.Password,
			IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}
		if a.Auth != "" {
			dec, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				return nil, wrapf(ErrInvalid, err, "auth file %s: %s", k.path, key)
			}
			user, pass, ok := strings.Cut(string(dec), ":")
			if !ok {
				return nil, errorf(ErrInvalid, "auth file %s: %s: auth is not user:password", k.path, key)
			}
			cfg.Username, cfg.Password = user, pass
		}
		return authn.FromConfig(cfg), nil
	}
	return authn.Anonymous, nil
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
