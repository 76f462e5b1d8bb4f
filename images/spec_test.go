package images

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func configJSON(t *testing.T, c map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux", "config": c,
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSpec(t *testing.T) {
	rootfs := t.TempDir()
	os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755)
	os.WriteFile(filepath.Join(rootfs, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(rootfs, "etc/group"), []byte("root:x:0:\napp:x:1001:\nextra:x:2000:other,app\nwheel:x:10:\n"), 0o644)
	img := map[string]any{
		"Entrypoint": []string{"/bin/tini", "--"}, "Cmd": []string{"serve", "-v"},
		"Env": []string{"PATH=/app/bin", "A=1", "EXACT= spaced\tvalue "}, "WorkingDir": "/app", "User": "app",
		"Labels": map[string]string{"l": "v"}, "StopSignal": "SIGQUIT",
	}
	tests := []struct {
		name string
		o    SpecOptions
		args []string
		env  []string
		cwd  string
		user specs.User
	}{
		{"image only", SpecOptions{}, []string{"/bin/tini", "--", "serve", "-v"},
			[]string{"PATH=/app/bin", "A=1", "EXACT= spaced\tvalue "}, "/app", specs.User{UID: 1000, GID: 1001, AdditionalGids: []uint32{2000}}},
		{"options over the image", SpecOptions{Args: []string{"sh"}, Env: []string{"A=2", "B=3"}, Workdir: "/tmp", User: "0:10"},
			[]string{"/bin/tini", "--", "sh"}, []string{"PATH=/app/bin", "A=2", "EXACT= spaced\tvalue ", "B=3"}, "/tmp", specs.User{UID: 0, GID: 10}},
		{"names", SpecOptions{User: "app:wheel"}, []string{"/bin/tini", "--", "serve", "-v"},
			[]string{"PATH=/app/bin", "A=1", "EXACT= spaced\tvalue "}, "/app", specs.User{UID: 1000, GID: 10}},
		{"numeric uid in passwd", SpecOptions{User: "1000"}, nil, nil, "", specs.User{UID: 1000, GID: 1001, AdditionalGids: []uint32{2000}}},
		{"unknown numeric uid", SpecOptions{User: "4242"}, nil, nil, "", specs.User{UID: 4242}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.ID, tt.o.Rootfs = "c1", "rootfs"
			s, err := Spec(configJSON(t, img), rootfs, tt.o)
			if err != nil {
				t.Fatal(err)
			}
			if tt.args != nil && !reflect.DeepEqual(s.Process.Args, tt.args) {
				t.Errorf("args %q, want %q", s.Process.Args, tt.args)
			}
			if tt.env != nil && !reflect.DeepEqual(s.Process.Env, tt.env) {
				t.Errorf("env %q, want %q", s.Process.Env, tt.env)
			}
			if tt.cwd != "" && s.Process.Cwd != tt.cwd {
				t.Errorf("cwd %q, want %q", s.Process.Cwd, tt.cwd)
			}
			if !reflect.DeepEqual(s.Process.User, tt.user) {
				t.Errorf("user %+v, want %+v", s.Process.User, tt.user)
			}
			if s.Annotations["l"] != "v" || s.Annotations[StopSignalAnnotation] != "SIGQUIT" {
				t.Errorf("annotations %v", s.Annotations)
			}
			if s.Hostname != "c1" || s.Root.Path != "rootfs" || s.Root.Readonly || !s.Process.NoNewPrivileges ||
				len(s.Linux.MaskedPaths) == 0 || len(s.Linux.ReadonlyPaths) == 0 || len(s.Linux.Namespaces) != 6 ||
				len(s.Process.Capabilities.Bounding) == 0 || len(s.Process.Rlimits) != 1 {
				t.Errorf("defaults missing: %+v", s)
			}
		})
	}
}

func TestSpecErrors(t *testing.T) {
	rootfs := t.TempDir()
	// An absolute symlink must resolve inside the rootfs, never to the host's.
	os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755)
	os.Symlink("/etc/shadow", filepath.Join(rootfs, "etc/passwd"))
	for name, tc := range map[string]struct {
		cfg  map[string]any
		o    SpecOptions
		kind error
	}{
		"no command":       {map[string]any{}, SpecOptions{}, ErrInvalid},
		"bad env":          {map[string]any{"Cmd": []string{"x"}}, SpecOptions{Env: []string{"NOEQUALS"}}, ErrInvalid},
		"relative workdir": {map[string]any{"Cmd": []string{"x"}}, SpecOptions{Workdir: "rel"}, ErrInvalid},
		"unknown user":     {map[string]any{"Cmd": []string{"x"}}, SpecOptions{User: "root"}, ErrInvalid},
	} {
		if _, err := Spec(configJSON(t, tc.cfg), rootfs, tc.o); !errors.Is(err, tc.kind) {
			t.Errorf("%s: %v, want %v", name, err, tc.kind)
		}
	}
}
