package images

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestAuthFileHostile: the auth file is refused, with its kind and reason,
// when it is a symlink, a FIFO (at once), a directory, too big, not JSON
// (without quoting its bytes) or has a bad auth; a colon in the password is
// kept.
func TestAuthFileHostile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	os.WriteFile(good, []byte(`{"auths":{"r.io":{"auth":"dTpwOnc="}}}`), 0o600) // u:p:w
	af, err := readAuthFile(context.Background(), good, 1<<10)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := af.Auths["r.io"].credentials(); c.Username != "u" || c.Password != "p:w" {
		t.Errorf("credentials %q:%q, want u:p:w", c.Username, c.Password)
	}
	if k := (fileKeychain{file: af}); !k.has("r.io") || k.has("other.io") || (fileKeychain{}).has("r.io") {
		t.Errorf("has: wrong answers")
	}
	link, fifo, big, bad, badAuth := filepath.Join(dir, "link"), filepath.Join(dir, "fifo"), filepath.Join(dir, "big"), filepath.Join(dir, "bad"), filepath.Join(dir, "badauth")
	os.Symlink(good, link)
	syscall.Mkfifo(fifo, 0o600)
	os.WriteFile(big, make([]byte, 2<<10), 0o600)
	os.WriteFile(bad, []byte(`{"auths":{"r.io":{"auth":"secret}}`), 0o600)
	os.WriteFile(badAuth, []byte(`{"auths":{"r.io":{"auth":"!!"}}}`), 0o600)
	for _, c := range []struct {
		path string
		kind error
		want string
	}{
		{link, ErrInvalid, "is a symlink"},
		{fifo, ErrInvalid, "a FIFO"},
		{dir, ErrInvalid, "a directory"},
		{big, ErrTooBig, "too large"},
		{bad, ErrInvalid, "not JSON (at byte"},
		{badAuth, ErrInvalid, "auth is not base64"},
		{filepath.Join(dir, "missing"), ErrInvalid, "no such file"},
	} {
		_, err := readAuthFile(context.Background(), c.path, 1<<10)
		if !errors.Is(err, c.kind) || err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.path) {
			t.Errorf("%s: %v, want %v saying %q", c.path, err, c.kind, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the error shows the file's content: %v", c.path, err)
		}
	}
}
